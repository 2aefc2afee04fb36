"""Training metrics: one processor computes the derived numbers, a container fans them out to the sinks.

Design after torchtitan's `components/metrics.py` (BaseLogger -> W&B / TensorBoard loggers, a container, one
`MetricsProcessor.log`). The trainer calls, on every rank:

    metrics = build_metrics(run_dir, rank, world_size, flops_per_token, precision, ...)   # once
    metrics.step_done(iteration, loss, lr, grad_norm, ...)     # every step: only appends, never syncs the GPU
    metrics.log(iteration)                                     # every log_interval: computes and writes
    with metrics.untimed(): evaluate / save a checkpoint       # keeps that time out of tokens/s
    metrics.log_eval(iteration, eval_loss)
    metrics.log_eval_tasks(iteration, {"piqa/acc": 0.61})      # lm-eval scores (eval_tasks)
    checkpoint["wandb_run_id"] = metrics.wandb_run_id          # rank 0 knows it; store it for the resume
    metrics.close()

Only rank 0 gets sinks; other ranks compute and drop the numbers. Metric keys (absent when not meaningful):
loss, lr, grad_norm, loss_scale (fp16 only), tokens_per_second, samples_per_second (global, all ranks),
tflops_per_gpu, mfu_percent (needs a known device peak), seconds_per_iteration, data_wait_seconds,
data_wait_fraction, skipped_steps, skipped_steps_total, memory_max_allocated_gib, memory_max_reserved_gib
(CUDA only); eval/loss, eval/perplexity; eval_tasks/<task>/<metric> (lm-eval scores, `log_eval_tasks`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch

from neox_metala.model.sizes import mfu, model_tflops_per_gpu, normalize_precision

from .metric_sinks import (
    METRICS_FILENAME,
    BaseLogger,
    ConsoleLogger,
    JsonlLogger,
    LoggerContainer,
    TensorBoardLogger,
)
from .wandb_sink import WandBLogger, WandBSettings

# Dense (no structured sparsity) tensor-core peaks in TFLOP/s from NVIDIA's data sheets, matched against
# torch.cuda.get_device_name() in this order (the first match wins, so specific names come first).
DEVICE_PEAK_TFLOPS = [
    (r"H100.*NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    (r"H100.*PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    (r"H100", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.7, "fp32": 66.9}),  # SXM: "NVIDIA H100 80GB HBM3"
    (r"H200.*NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    (r"H200", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.7, "fp32": 66.9}),  # H200 SXM and GH200
    (r"H800.*PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    (r"H800", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.7, "fp32": 66.9}),
    (r"\bH20\b", {"bf16": 148.0, "fp16": 148.0, "tf32": 74.0, "fp32": 44.0}),
    (r"A100|A800", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (r"L40S", {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    (r"\bL40\b", {"bf16": 181.0, "fp16": 181.0, "tf32": 90.5, "fp32": 90.5}),
    (r"\bL4\b", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    (r"\bA10\b", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    (r"B200", {"bf16": 2250.0, "fp16": 2250.0}),
    (r"V100", {"fp16": 125.0, "fp32": 15.7}),
]


def peak_tflops_for_device(device_name: str, precision: str) -> float | None:
    """Dense peak TFLOP/s of `device_name` for `precision` (bf16, fp16, tf32, fp32), or None if unknown."""
    for pattern, peaks in DEVICE_PEAK_TFLOPS:
        if re.search(pattern, device_name):
            return peaks.get(precision)
    return None


def _matmul_precision(precision: str) -> str:
    """fp32 training runs its matmuls on TF32 tensor cores when torch allows it."""
    if precision == "fp32" and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return precision


# ----------------------------------------------------------------------------------------------------------------
# Sinks


# ----------------------------------------------------------------------------------------------------------------
# Processor


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _as_float(value) -> float | None:
    return None if value is None else float(value)


class _Step(NamedTuple):
    loss: Any  # float or a tensor, read at log time
    lr: float
    grad_norm: Any
    loss_scale: float | None
    tokens: int
    samples: int
    data_wait_seconds: float
    skipped: bool


class MetricsProcessor:
    """Accumulates per-step numbers and, at each log, computes interval averages and rates for the sinks.

    flops_per_token: training model FLOPs per token (`model.sizes.flops_per_token(shape)["total"]`), or None.
    world_size: all GPUs of the job (TFLOP/s and MFU are per GPU). precision: bf16, fp16 or fp32 (or NeoX's
    bfloat16 / float16 / float32).
    peak_tflops_per_gpu: overrides the device table (and then MFU is reported on any device).
    """

    def __init__(
        self,
        loggers: BaseLogger,
        flops_per_token: float | None,
        world_size: int,
        precision: str,
        peak_tflops_per_gpu: float | None = None,
        clock=time.perf_counter,
    ):
        self.loggers = loggers
        self.flops_per_token = flops_per_token
        self.world_size = world_size
        self.precision = normalize_precision(precision)
        self.peak_tflops_per_gpu = peak_tflops_per_gpu or self._device_peak_tflops(self.precision)
        self.clock = clock
        self.skipped_steps_total = 0
        self._steps: list[_Step] = []
        self._untimed_seconds = 0.0
        self._interval_start = clock()

    @staticmethod
    def _device_peak_tflops(precision: str) -> float | None:
        if not torch.cuda.is_available():
            return None  # no fake MFU on CPU
        return peak_tflops_for_device(torch.cuda.get_device_name(), _matmul_precision(precision))

    @property
    def wandb_run_id(self) -> str | None:
        wandb_logger = self.loggers.find(WandBLogger) if isinstance(self.loggers, LoggerContainer) else None
        return wandb_logger.run_id if wandb_logger else None

    def step_done(
        self,
        iteration: int,
        loss,
        lr: float,
        grad_norm=None,
        loss_scale=None,
        tokens: int = 0,
        samples: int = 0,
        data_wait_seconds: float = 0.0,
        skipped: bool = False,
    ) -> None:
        """Record one optimizer step. `loss`/`grad_norm` may be GPU tensors: they are read only at `log`.

        iteration: the step's number; not needed for the numbers, taken so call sites read clearly.

        tokens, samples: this step's global counts (all data-parallel ranks). skipped: the step was not applied
        (non-finite gradients); its loss and grad norm are left out of the means, its tokens still count toward
        throughput (the work was done).
        """
        self._steps.append(_Step(loss, lr, grad_norm, loss_scale, tokens, samples, data_wait_seconds, skipped))

    @contextlib.contextmanager
    def untimed(self):
        """Time spent inside (evaluation, checkpointing) is left out of the interval's rates."""
        start = self.clock()
        try:
            yield
        finally:
            self._untimed_seconds += self.clock() - start

    def log(self, iteration: int) -> dict:
        """Compute the numbers of the interval since the last log, send them to the sinks, and start anew."""
        steps, self._steps = self._steps, []
        # Reading GPU tensors waits for the queued work, so it happens before the clock is read.
        values = [(_as_float(step.loss), _as_float(step.grad_norm)) for step in steps]
        applied = [value for value, step in zip(values, steps) if not step.skipped]
        now = self.clock()
        elapsed = max(now - self._interval_start - self._untimed_seconds, 1e-12)
        self._interval_start, self._untimed_seconds = now, 0.0

        metrics = {}
        loss = _mean([loss for loss, _ in applied if loss is not None and math.isfinite(loss)])
        grad_norm = _mean([norm for _, norm in applied if norm is not None and math.isfinite(norm)])
        if loss is not None:
            metrics["loss"] = loss
        if steps:
            metrics["lr"] = float(steps[-1].lr)
        if grad_norm is not None:
            metrics["grad_norm"] = grad_norm
        if self.precision == "fp16" and steps and steps[-1].loss_scale is not None:
            metrics["loss_scale"] = float(steps[-1].loss_scale)
        metrics.update(self._rates(steps, elapsed))
        metrics.update(self._memory())
        skipped = len(steps) - len(applied)
        self.skipped_steps_total += skipped
        metrics["skipped_steps"] = skipped
        metrics["skipped_steps_total"] = self.skipped_steps_total
        self.loggers.log(metrics, iteration)
        return metrics

    def _rates(self, steps: list[_Step], elapsed: float) -> dict:
        data_wait = sum(step.data_wait_seconds for step in steps)
        rates = {
            "tokens_per_second": sum(step.tokens for step in steps) / elapsed,
            "samples_per_second": sum(step.samples for step in steps) / elapsed,
            "data_wait_seconds": data_wait,
            "data_wait_fraction": data_wait / elapsed,
        }
        if steps:
            rates["seconds_per_iteration"] = elapsed / len(steps)
        if self.flops_per_token:
            tokens_per_gpu = rates["tokens_per_second"] / self.world_size  # the job's tokens, shared by every GPU
            rates["tflops_per_gpu"] = model_tflops_per_gpu(self.flops_per_token, tokens_per_gpu)
            if self.peak_tflops_per_gpu:
                rates["mfu_percent"] = 100 * mfu(self.flops_per_token, tokens_per_gpu, self.peak_tflops_per_gpu)
        return rates

    @staticmethod
    def _memory() -> dict:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return {}
        memory = {
            "memory_max_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "memory_max_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        }
        torch.cuda.reset_peak_memory_stats()  # peaks per log interval
        return memory

    def log_eval(self, iteration: int, loss) -> dict:
        loss = float(loss)
        metrics = {"eval/loss": loss, "eval/perplexity": math.exp(min(loss, 700.0))}  # 700: no float overflow
        self.loggers.log(metrics, iteration)
        return metrics

    def log_eval_tasks(self, iteration: int, task_scores: dict[str, float]) -> dict:
        """lm-eval scores ({"task/metric": value}, `harness.scores`) as eval_tasks/<task>/<metric>."""
        metrics = {f"eval_tasks/{name}": float(value) for name, value in task_scores.items()}
        self.loggers.log(metrics, iteration)
        return metrics

    def close(self) -> None:
        self.loggers.close()


def build_metrics(
    run_dir: str | os.PathLike,
    rank: int,
    world_size: int,
    flops_per_token: float | None,
    precision: str,
    train_iters: int | None = None,
    *,
    resume_iteration: int | None = None,
    console: bool = True,
    wandb: WandBSettings | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
    peak_tflops_per_gpu: float | None = None,
    console_stream=None,
    clock=time.perf_counter,
) -> MetricsProcessor:
    """The trainer's one constructor. Rank 0 writes RUN_DIR/metrics.jsonl, the console line, and W&B (if
    `wandb`) and TensorBoard (if `tensorboard_dir`); other ranks get no sinks.

    On resume pass `resume_iteration` (the checkpoint's iteration) and the stored run id in `wandb`: records a crashed
    job left after the checkpoint are dropped from metrics.jsonl and hidden in TensorBoard, and W&B continues the
    same run: steps up to the checkpoint that W&B lost with the killed job are re-sent from metrics.jsonl, steps it
    already has are not (W&B keeps those first values); see `wandb_sink`. W&B files go to $WANDB_DIR if set, else
    RUN_DIR. A resumable job that found no checkpoint passes `resume_iteration=0`.
    """
    loggers: list[BaseLogger] = []
    if rank == 0:
        jsonl = JsonlLogger(Path(run_dir) / METRICS_FILENAME)
        if resume_iteration is not None:
            jsonl.truncate_after(resume_iteration)
        if console:
            loggers.append(ConsoleLogger(train_iters, console_stream))
        if wandb:
            loggers.append(
                WandBLogger(
                    wandb, os.environ.get("WANDB_DIR", str(run_dir)), history=jsonl.records() if wandb.run_id else None
                )
            )
        if tensorboard_dir:
            purge_step = resume_iteration + 1 if resume_iteration is not None else None
            loggers.append(TensorBoardLogger(tensorboard_dir, purge_step=purge_step))
        # The JSONL file last: a record there means every other sink was handed that step (W&B may still lose
        # it in a kill: wandb_sink refills W&B from this file).
        loggers.append(jsonl)
    return MetricsProcessor(
        LoggerContainer(loggers),
        flops_per_token,
        world_size,
        precision,
        peak_tflops_per_gpu=peak_tflops_per_gpu,
        clock=clock,
    )
