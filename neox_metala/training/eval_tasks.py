"""lm-evaluation-harness tasks during training (`eval_tasks`), on the training engine itself.

Every rank runs lm-eval on the same requests; only the log-likelihoods are shared out (harness.py computes them):
each data-parallel rank scores every dp-th request (longest first, so the shards cost alike, padded to one length
so that every rank runs the same number of forwards), the tensor-parallel ranks of a group run the same forward
and gather the vocabulary, and in a pipeline the last stage scores its logits (DeepSpeed's `eval_batch`) and
broadcasts the scores to the other stages. The scores are then gathered over the data-parallel group, so lm-eval
computes the same metrics on every rank; rank 0's metric sinks log them.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

from .. import parallel
from ..config import ConfigError, NeoXArgs
from ..harness import LogLikelihoodLM, continuation_scores, run_tasks, scores
from ..model.gpt import no_padding_mask
from .checkpoint import rng_state, set_rng_state

logger = logging.getLogger("neox_metala.training")
SUPPORTED_OUTPUT_TYPES = ("loglikelihood", "multiple_choice", "loglikelihood_rolling")


class EngineLM(LogLikelihoodLM):
    """lm-eval's `LM` over the DeepSpeed engine (plain or pipeline); called on every rank with the same requests."""

    def __init__(self, engine, is_pipeline: bool, tokenizer, max_length: int, batch_size: int):
        super().__init__(tokenizer, max_length, batch_size)
        self.engine, self.is_pipeline = engine, is_pipeline
        self._device = torch.device(engine.device)

    def _score(self, pairs):
        """This data-parallel rank's share of the pairs, scored, then every rank's scores in the original order."""
        dp_size, dp_rank = parallel.data_parallel_size(), parallel.data_parallel_rank()
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        per_rank = -(-len(pairs) // dp_size)
        shard = order[dp_rank::dp_size]
        filler = [order[-1]] * (per_rank - len(shard))  # the shortest pair, scored and dropped
        mine = torch.tensor(super()._score([pairs[i] for i in shard + filler]), dtype=torch.float64)
        gathered = [torch.empty(per_rank, 2, dtype=torch.float64, device=self._device) for _ in range(dp_size)]
        dist.all_gather(gathered, mine.reshape(per_rank, 2).to(self._device), group=parallel.data_parallel_group())
        results: list = [None] * len(pairs)
        for rank, scored in enumerate(gathered):
            for i, (score, greedy) in zip(order[rank::dp_size], scored.tolist()):
                results[i] = (score, bool(greedy))
        return results

    def _batch_scores(self, tokens, lengths, continuations):
        inputs = (tokens.to(self._device), no_padding_mask(self._device))
        if not self.is_pipeline:
            logits = parallel.gather_tensor_parallel(self.engine(inputs)).transpose(0, 1)
            return continuation_scores(logits, lengths, continuations)
        engine = self.engine
        engine.reset_activation_shape()  # every batch has its own shape: the stages exchange it again
        engine.total_loss = None  # it sums each forward's output until the next train_batch: logits do not add up
        labels = torch.zeros_like(inputs[0])  # read by the last stage, unused without the loss
        _, logits = engine.eval_batch(
            iter([(inputs, labels)]), return_logits=True, compute_loss=False, reduce_output=None, num_micro_batches=1
        )
        result = torch.zeros(len(lengths), 2, dtype=torch.float64, device=self._device)
        if engine.is_last_stage():
            logits = parallel.gather_tensor_parallel(logits).transpose(0, 1)
            result = torch.tensor(continuation_scores(logits, lengths, continuations), dtype=torch.float64)
            result = result.reshape(len(lengths), 2).to(self._device)
        last_stage = engine.grid.stage_to_global(engine.num_stages - 1)
        dist.broadcast(result, src=last_stage, group=engine.grid.get_pipe_parallel_group())
        return [(score, bool(greedy)) for score, greedy in result.tolist()]


def check_task_data(manager, names: list[str], source: str | None) -> None:
    """Load the tasks (their data too: lm-eval's download, or the local files) and refuse those that generate text,
    at start rather than at the first evaluation. Local rank 0 of each node first, so that a node downloads once."""
    first = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if not first:
        dist.barrier()
    try:
        tasks = manager.load(names)["tasks"]
    except Exception as error:  # lm-eval and datasets raise many kinds; the message says what was missing
        raise ConfigError(f"eval_tasks: cannot load {names}: {error}", source, "eval_tasks") from None
    finally:
        if first:
            dist.barrier()
    for name, task in tasks.items():
        if task.OUTPUT_TYPE not in SUPPORTED_OUTPUT_TYPES:
            raise ConfigError(
                f"eval_tasks: {name!r} generates text (output_type {task.OUTPUT_TYPE}), which evaluation during "
                f"training does not do; remove it and evaluate it after training with python -m neox_metala.evaluate",
                source,
                "eval_tasks",
            )


class TaskEvaluation:
    """`eval_tasks` of a run, scored on the engine by `run`. Built at start (collective): a ConfigError for task
    data that cannot be loaded or a task that generates text. `manager`: `config.evaluation.eval_task_manager`."""

    def __init__(self, args: NeoXArgs, tokenizer, manager):
        self.names, self.manager, self.tokenizer = args.evaluation.eval_tasks, manager, tokenizer
        self.limit = args.evaluation.task_limit()
        self.max_length = args.model.max_position_embeddings
        self.batch_size = args.training.train_micro_batch_size_per_gpu
        self.is_pipeline = args.parallel.is_pipe_parallel
        check_task_data(manager, self.names, args.source_of("eval_tasks"))

    def run(self, engine) -> dict[str, float]:
        """{"task/metric": value} on rank 0 (lm-eval hands its results to each node's local rank 0 only; {} on the
        others). The random streams are left as they were (lm-eval seeds them)."""
        random_state = rng_state()
        if dist.get_rank() != 0:
            logging.getLogger("lm_eval").setLevel(logging.ERROR)  # rank 0 reports; the others compute the same
        engine.eval()
        try:
            lm = EngineLM(engine, self.is_pipeline, self.tokenizer, self.max_length, self.batch_size)
            results = run_tasks(lm, self.names, self.manager, limit=self.limit)
        finally:
            engine.train()
            if self.is_pipeline:
                engine.reset_activation_shape()  # training batches have their own shape again
            set_rng_state(random_state)
        return scores(results) if results is not None else {}
