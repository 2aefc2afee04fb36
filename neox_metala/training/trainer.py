"""The training loop: `Trainer.train` is a short loop over `train_step`; the engine, data streams, checkpoints,
metrics and stop conditions are small components built in `__init__`."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys

import torch
import torch.distributed as dist

from .. import parallel, warmup
from ..config import ConfigError, NeoXArgs, check_data_paths, padded_vocab_size
from ..config.data_check import check_save_writable
from ..config.evaluation import eval_task_manager
from ..data.datasets import Split
from ..data.tokenizers import load_tokenizer
from ..launch.train_args import parse_train_args
from ..model.gpt import cross_entropy_loss
from ..model.sizes import flops_per_token
from . import checkpoint, layout_change
from .batches import BatchStream, build_run_datasets, stream_device
from .checkpoint_files import CheckpointFormatError
from .engine import build_model, initialize_engine
from .metrics import build_metrics
from .neutral_checkpoint import NeutralCheckpoint, layout_of
from .signals import StopConditions
from .wandb_sink import WandBSettings

logger = logging.getLogger("neox_metala.training")


@dataclasses.dataclass
class TrainState:
    """What a checkpoint holds beyond DeepSpeed's own state (weights, optimizer, LR schedule)."""

    iteration: int = 0
    consumed_train_samples: int = 0
    consumed_valid_samples: int = 0
    wandb_run_id: str | None = None


class NonFiniteStop(RuntimeError):
    pass


class Trainer:
    def __init__(self, args: NeoXArgs):
        self.args = args
        self.stop = StopConditions(args.training.exit_interval, args.training.exit_duration_in_mins)
        kernel_cache = warmup.use_kernel_cache(args.training.kernel_cache_dir)
        self.layout = parallel.initialize(args.parallel.model_parallel_size, args.parallel.pipeline_stages)
        args.check_world_size(self.layout.world_size)
        check_data_paths(args)  # inputs and outputs first: a mistake there costs seconds, not a GPU warm-up
        check_save_writable(args, dist.get_rank())
        torch.manual_seed(args.training.seed)
        tokenizer = load_tokenizer(args.data.tokenizer_type, args.data.vocab_file, args.data.merge_file)
        self.task_evaluation = None
        if (task_manager := eval_task_manager(args)) is not None:  # ConfigError: no lm-eval, an unknown task
            from .eval_tasks import TaskEvaluation  # needs lm-eval, an optional dependency

            self.task_evaluation = TaskEvaluation(args, tokenizer, task_manager)  # loads and checks the task data
        vocab = padded_vocab_size(
            tokenizer.vocab_size, args.model.make_vocab_size_divisible_by, args.parallel.model_parallel_size
        )
        self.eod_id = tokenizer.eod_id if args.model.reset_attention_mask else None  # batches mark document starts
        self.tokenizer_record = {
            "vocab_size": tokenizer.vocab_size,
            "padded_vocab_size": vocab,
            "fingerprint": tokenizer.fingerprint,
        }
        load = args.checkpoint.load
        self.resume_tag = checkpoint.find_resume_tag(load) if load else None
        if self.resume_tag:  # a checkpoint of another TP size may pad the vocabulary otherwise: keep its rows
            vocab = layout_change.padded_vocab_for_resume(
                os.path.join(load, self.resume_tag), tokenizer.vocab_size, vocab, args.parallel.model_parallel_size
            )
            self.tokenizer_record["padded_vocab_size"] = vocab
        self._warm_up_kernels(kernel_cache)
        self.engine = initialize_engine(args, build_model(args, self.layout, vocab))
        self.is_pipeline = args.parallel.is_pipe_parallel
        self.state = TrainState()
        self.resumed_from = self._resume() if args.checkpoint.load else None
        self.run_dir = args.logging.log_dir or args.checkpoint.save or os.path.join("runs", "latest")
        self.datasets = build_run_datasets(args, tokenizer, os.path.join(self.run_dir, "index-cache"))
        self.train_stream = self._stream(Split.TRAIN, self.state.consumed_train_samples)
        self.metrics = self._build_metrics(vocab)
        self.nan_test_iterations: set[int] = set()  # their loss is made NaN: tests/training/hooked_train.py
        self.consecutive_skips = 0
        self.updates_since_save = 0  # a save after skipped steps only must not push out good checkpoints
        # DeepSpeed skips a non-finite step only through an optimizer wrapper with an overflow check (ZeRO >= 1,
        # fp16, bf16); without one (ZeRO stage 0 in fp32) the NaN update is applied and the loss must be checked.
        self.engine_skips_non_finite = hasattr(self.engine.optimizer, "overflow")

    def _warm_up_kernels(self, kernel_cache: str) -> None:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        seconds = warmup.warm_up_node(warmup.MixerShapes.of(self.args), device)
        if seconds is not None and dist.get_rank() == 0:
            logger.info(
                "MetaLA kernels compiled or loaded in %.1f s on local rank 0 of each node (kernel cache %s)",
                seconds,
                kernel_cache,
            )

    def _build_metrics(self, padded_vocab: int):
        args, logging_cfg = self.args, self.args.logging
        flops = flops_per_token(args.model_shape(padded_vocab))["total"]
        wandb = (
            WandBSettings(
                logging_cfg.wandb_project,
                logging_cfg.wandb_group,
                logging_cfg.wandb_team,
                logging_cfg.wandb_run_name,
                logging_cfg.wandb_host,
                self.state.wandb_run_id,
                args.to_dict(),
            )
            if logging_cfg.use_wandb
            else None
        )
        return build_metrics(
            self.run_dir,
            dist.get_rank(),
            self.layout.world_size,
            flops,
            args.training.precision,
            args.training.train_iters,
            resume_iteration=self._metrics_resume_iteration(),
            tensorboard_dir=logging_cfg.tensorboard_dir,
            peak_tflops_per_gpu=logging_cfg.peak_tflops_per_gpu,
            wandb=wandb,
        )

    def _metrics_resume_iteration(self) -> int | None:
        """Where the metrics files restart. A resumable job (`load` set) that found no checkpoint starts at 0: the
        records of an earlier attempt killed before its first checkpoint must go, not be logged twice."""
        return self.state.iteration if self.resumed_from or self.args.checkpoint.load else None

    def _stream(self, split: Split, consumed: int):
        dataset = self.datasets[split]
        if dataset is None:
            return None
        return BatchStream(
            dataset,
            consumed,
            self.args.training.train_micro_batch_size_per_gpu,
            stream_device(self.engine),
            self.args.data.num_workers,
            self.eod_id,
        )

    def _resume(self) -> str | None:
        load, options = self.args.checkpoint.load, self.args.checkpoint
        tag = self.resume_tag
        if tag is None:
            logger.warning("no checkpoint in load=%s: starting from scratch", load)
            return None
        checkpoint.check_same_model(load, tag, self.args.to_dict(), self.args.source_of, self.tokenizer_record)
        parts = checkpoint.LoadParts.of(options)
        saved_layout = layout_change.needs_conversion(os.path.join(load, tag), self.args)
        load_dir = self._convert_layout(load, tag, saved_layout, parts) if saved_layout else load
        tag, client_state = checkpoint.load_newest_sound(self.engine, load_dir, tag, parts)
        if options.finetune:
            logger.info(
                "finetune: loaded the weights of %s; starting at iteration 0 with a fresh optimizer",
                os.path.join(load_dir, tag),
            )
            return tag
        self.state = TrainState(**client_state["train_state"])
        logger.info(
            "resumed from %s at iteration %d%s",
            os.path.join(load_dir, tag),
            self.state.iteration,
            "" if parts.optimizer else " (no_load_optim: fresh optimizer and LR schedule)",
        )
        return tag

    def _convert_layout(self, load: str, tag: str, saved_layout, parts: checkpoint.LoadParts) -> str:
        """Collective: convert `load`/`tag` into this run's layout (once: a restart reuses the conversion);
        returns the folder of the converted checkpoint."""
        layout = layout_of(self.args)
        out = layout_change.converted_dir(self.args.checkpoint.save or load, layout, parts.optimizer)
        step_dir = os.path.join(load, tag)
        if checkpoint.incompleteness(os.path.join(out, tag)) is None:
            logger.info(
                "%s was written in layout %s; this run (%s) loads its conversion %s",
                step_dir,
                saved_layout,
                layout,
                os.path.join(out, tag),
            )
            return out
        corrupted = checkpoint.corrupted_files(step_dir)
        if corrupted:
            raise checkpoint.CheckpointError(
                f"{step_dir}: {', '.join(corrupted)} differ from the digests recorded when it was saved, so it cannot "
                f"be converted into this run's layout; restore them, or remove the folder to use the previous step"
            )
        logger.info(
            "%s was written in layout %s; this run is %s: converting it into %s", step_dir, saved_layout, layout, out
        )
        source = NeutralCheckpoint(step_dir)
        saved_batch, batch = source.args.training.train_batch_size, self.args.training.train_batch_size
        if saved_batch != batch:
            logger.warning(
                "train_batch_size was %d in %s and is %d now: the data continues after the samples "
                "consumed, but each iteration takes other samples than in the saved run; keep "
                "train_batch_size and let gradient_accumulation_steps follow the data-parallel size to "
                "continue the same batches",
                saved_batch,
                step_dir,
                batch,
            )
        layout_change.convert_into(
            self.engine, source, layout, out, self.args.to_yaml(), self.tokenizer_record, with_optimizer=parts.optimizer
        )
        return out

    def train(self) -> int:
        """Returns the process exit code: 0 when done or stopped on request, 3 after repeated non-finite steps."""
        training = self.args.training
        saved_at = self.state.iteration if self.resumed_from else None  # never rewrite the step just loaded
        tasks_at = self.state.iteration  # the last iteration whose eval_tasks were scored (or that had no steps)
        try:
            while self.state.iteration < training.train_iters:
                self.train_step()
                iteration = self.state.iteration
                if iteration % self.args.logging.log_interval == 0:
                    self.metrics.log(iteration)
                if training.eval_iters and iteration % training.eval_interval == 0:
                    self.evaluate()
                if self.task_evaluation and iteration % training.eval_interval == 0:
                    tasks_at = self.evaluate_tasks()
                if self.args.checkpoint.checkpoint_factor and iteration % self.args.checkpoint.checkpoint_factor == 0:
                    saved_at = self.save()
                reason = self.stop.reason_to_stop(iteration)
                if reason:
                    logger.info("stopping at iteration %d: %s", iteration, reason)
                    break
            finished = self.state.iteration == training.train_iters  # not stopped early
            if self.task_evaluation and finished and tasks_at != self.state.iteration:
                self.evaluate_tasks()  # the end of training
            if saved_at != self.state.iteration:
                self.save()
            return 0
        except NonFiniteStop as error:
            self.metrics.log(self.state.iteration)  # the steps that led to the stop: train_step raised before logging
            logger.error("%s", error)
            return 3
        finally:
            self.metrics.close()

    def train_step(self) -> None:
        skipped_before = self.engine.skipped_steps
        poison = self.state.iteration + 1 in self.nan_test_iterations
        loss = self._pipeline_step(poison) if self.is_pipeline else self._plain_step(poison)
        skipped = self.engine.skipped_steps > skipped_before
        self.updates_since_save += not skipped
        self.state.iteration += 1
        self.state.consumed_train_samples += self.args.training.train_batch_size
        self.metrics.step_done(
            self.state.iteration,
            loss,
            self.engine.get_lr()[0],
            grad_norm=self.engine.get_global_grad_norm(),
            loss_scale=self._loss_scale(),
            tokens=self.args.training.train_batch_size * self.args.model.seq_length,
            samples=self.args.training.train_batch_size,
            data_wait_seconds=self.train_stream.take_wait_seconds(),
            skipped=skipped,
        )
        if not self.engine_skips_non_finite and not math.isfinite(loss.item()):  # item(): a sync, only here
            raise NonFiniteStop(
                f"stopping: iteration {self.state.iteration} had a non-finite loss and its update was applied "
                f"(zero_optimization stage 0 in {self.args.training.precision} does not skip such steps), so the "
                f"weights are no longer usable; resume from the last checkpoint in {self.args.checkpoint.save} "
                f"with zero_optimization stage 1, which skips non-finite steps"
            )
        self._guard_non_finite(skipped)

    def _plain_step(self, poison: bool) -> torch.Tensor:
        losses = []
        for _ in range(self.args.training.gradient_accumulation_steps):
            inputs, labels = next(self.train_stream)
            loss = cross_entropy_loss(self.engine(inputs), labels)
            if poison:
                loss = loss * float("nan")
            self.engine.backward(loss)
            self.engine.step()
            losses.append(loss.detach())
        mean_loss = torch.stack(losses).mean()
        dist.all_reduce(mean_loss, group=parallel.data_parallel_group())
        return mean_loss / parallel.data_parallel_size()

    def _pipeline_step(self, poison: bool) -> torch.Tensor:
        stream = _poisoned(self.train_stream) if poison else self.train_stream
        return self.engine.train_batch(data_iter=stream)

    def _loss_scale(self):
        return getattr(self.engine.optimizer, "loss_scale", None) if self.args.training.precision == "fp16" else None

    def _guard_non_finite(self, skipped: bool) -> None:
        self.consecutive_skips = self.consecutive_skips + 1 if skipped else 0
        if skipped:
            logger.warning("iteration %d: non-finite loss or gradient, update skipped", self.state.iteration)
        limit = self.args.training.max_consecutive_nonfinite
        if limit and self.consecutive_skips >= limit:
            raise NonFiniteStop(
                f"stopping: {self.consecutive_skips} consecutive steps (up to iteration {self.state.iteration}) "
                f"had a non-finite loss or gradient norm; resume from the last checkpoint in "
                f"{self.args.checkpoint.save} (load) after fixing the cause, e.g. a lower learning rate"
            )

    def evaluate(self, split: Split = Split.VALID) -> float | None:
        consumed = self.state.consumed_valid_samples if split == Split.VALID else 0
        stream = self._stream(split, consumed)
        if stream is None:
            return None
        try:
            with self.metrics.untimed():
                loss = self._mean_eval_loss(stream)
        finally:
            stream.close()
        if split == Split.VALID:
            self.state.consumed_valid_samples += self.args.training.eval_iters * self.args.training.train_batch_size
        if split == Split.VALID:
            self.metrics.log_eval(self.state.iteration, loss.item())
        else:
            logger.info("test loss %.4f at iteration %d", loss.item(), self.state.iteration)
        return loss.item()

    def _mean_eval_loss(self, stream) -> torch.Tensor:
        training = self.args.training
        self.engine.eval()
        losses = []
        with torch.no_grad():
            for _ in range(training.eval_iters):
                if self.is_pipeline:
                    losses.append(self.engine.eval_batch(data_iter=stream))
                    continue
                for _ in range(training.gradient_accumulation_steps):
                    inputs, labels = next(stream)
                    losses.append(cross_entropy_loss(self.engine(inputs), labels))
        self.engine.train()
        loss = torch.stack([loss.float() for loss in losses]).mean()
        if not self.is_pipeline:  # the pipeline engine already averages over data-parallel ranks
            dist.all_reduce(loss, group=parallel.data_parallel_group())
            loss = loss / parallel.data_parallel_size()
        return loss

    def evaluate_tasks(self) -> int:
        """Score `eval_tasks` with the current weights and log them at this iteration; returns the iteration."""
        with self.metrics.untimed():
            self.metrics.log_eval_tasks(self.state.iteration, self.task_evaluation.run(self.engine))
        return self.state.iteration

    def save(self) -> int | None:
        if not self.args.checkpoint.save:
            return None
        self.state.wandb_run_id = self.metrics.wandb_run_id
        with self.metrics.untimed():
            checkpoint.save(
                self.engine,
                self.args.checkpoint.save,
                self.state.iteration,
                {"train_state": dataclasses.asdict(self.state)},
                self.args.to_yaml(),
                self.args.checkpoint.keep_last_n_checkpoints,
                {"tokenizer": self.tokenizer_record, "only_skipped_updates": self.updates_since_save == 0},
            )
        self.updates_since_save = 0
        logger.info("saved checkpoint at iteration %d to %s", self.state.iteration, self.args.checkpoint.save)
        return self.state.iteration


def _poisoned(stream):
    """The next micro batches with a NaN loss mask: a non-finite loss for the NaN-guard tests."""
    for _ in range(sys.maxsize):
        inputs, (labels, loss_mask) = next(stream)
        yield inputs, (labels, loss_mask * float("nan"))


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_train_args(argv)
    try:
        trainer = Trainer(args)
        try:
            return trainer.train()
        finally:
            trainer.train_stream.close()  # its workers would otherwise outlive training (see BatchStream)
    except (ConfigError, checkpoint.CheckpointError, CheckpointFormatError) as error:  # one line, not a traceback
        rank = f" (rank {dist.get_rank()})" if dist.is_initialized() and dist.get_world_size() > 1 else ""
        print(f"train.py: error{rank}: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        parallel.destroy()
