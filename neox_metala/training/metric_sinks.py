"""Where training metrics go: the console line, metrics.jsonl (the record a resume truncates and W&B backfills
from), TensorBoard, and a container that fans one `log` out to them (W&B: wandb_sink.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

METRICS_FILENAME = "metrics.jsonl"


class BaseLogger:
    def log(self, metrics: dict, step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _compact(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:.1f}"


def format_console_line(metrics: dict, step: int, train_iters: int | None = None) -> str:
    """One readable line, e.g. `iteration 120/1000 | loss 4.321 | lr 2.9e-4 | grad norm 0.87 | 14.2k tok/s | ...`."""
    get = metrics.get
    parts = [f"iteration {step}" + (f"/{train_iters}" if train_iters else "")]
    if "loss" in metrics:
        parts.append(f"loss {get('loss'):.4g}")
    if "lr" in metrics:
        parts.append(f"lr {get('lr'):.2g}".replace("e-0", "e-"))
    if "grad_norm" in metrics:
        parts.append(f"grad norm {get('grad_norm'):.3g}")
    if "loss_scale" in metrics:
        parts.append(f"loss scale {get('loss_scale'):.0f}")
    if "tokens_per_second" in metrics:
        parts.append(f"{_compact(get('tokens_per_second'))} tok/s")
    if "tflops_per_gpu" in metrics:
        parts.append(f"{get('tflops_per_gpu'):.1f} TFLOP/s/GPU")
    if "mfu_percent" in metrics:
        parts.append(f"MFU {get('mfu_percent'):.1f}%")
    if "memory_max_allocated_gib" in metrics:
        parts.append(f"mem {get('memory_max_allocated_gib'):.1f}/{get('memory_max_reserved_gib'):.1f} GiB")
    if "data_wait_fraction" in metrics:
        parts.append(f"data wait {100 * get('data_wait_fraction'):.1f}%")
    if "seconds_per_iteration" in metrics:
        parts.append(f"{get('seconds_per_iteration'):.3g} s/it")
    if get("skipped_steps"):
        parts.append(f"skipped {get('skipped_steps')} (total {get('skipped_steps_total')})")
    if "eval/loss" in metrics:
        parts.append(f"eval loss {get('eval/loss'):.4g} | eval ppl {get('eval/perplexity'):.4g}")
    parts += [f"{key} {value:.4g}" for key, value in metrics.items() if key.startswith("eval_tasks/")]
    return " | ".join(parts)


class ConsoleLogger(BaseLogger):
    def __init__(self, train_iters: int | None = None, stream=None):
        self.train_iters = train_iters
        self.stream = stream

    def log(self, metrics: dict, step: int) -> None:
        print(format_console_line(metrics, step, self.train_iters), file=self.stream or sys.stdout, flush=True)


class JsonlLogger(BaseLogger):
    """Appends one JSON object per log (`iteration` + the numbers) to RUN_DIR/metrics.jsonl."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, metrics: dict, step: int) -> None:
        # Opened per log (every log_interval steps): nothing is lost in a buffer when the job is killed.
        with self.path.open("a") as file:
            file.write(json.dumps({"iteration": step, **metrics}) + "\n")

    def truncate_after(self, iteration: int) -> int | None:
        """Drop records with iteration > `iteration` (left by a crashed run) and unreadable partial lines.

        Rewrites through a temporary file and a rename. Returns the largest iteration the file held before,
        or None if there was no file or record.
        """
        if not self.path.exists():
            return None
        kept, last_seen = [], None
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the crash
            last_seen = record["iteration"] if last_seen is None else max(last_seen, record["iteration"])
            if record["iteration"] <= iteration:
                kept.append(line + "\n")
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(kept))
        os.replace(temporary, self.path)
        return last_seen

    def records(self) -> list[dict]:
        """The file's records (a line cut short by a crash is skipped)."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records


class TensorBoardLogger(BaseLogger):
    """Scalars by iteration. `purge_step` hides events at or after it left by a crashed run (on resume)."""

    def __init__(self, log_dir: str | os.PathLike, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # lazily: needs the tensorboard package

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, metrics: dict, step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()  # per log interval: a killed job keeps what it logged

    def close(self) -> None:
        self.writer.close()


class LoggerContainer(BaseLogger):
    def __init__(self, loggers: list[BaseLogger]):
        self.loggers = list(loggers)

    def log(self, metrics: dict, step: int) -> None:
        for logger in self.loggers:
            logger.log(metrics, step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()

    def find(self, kind: type):
        return next((logger for logger in self.loggers if isinstance(logger, kind)), None)
