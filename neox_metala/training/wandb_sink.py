"""The Weights & Biases sink of `training.metrics`, and a reader for W&B's offline transaction log (`.wandb`).

A resumed job continues the same W&B run (same id), and its iteration axis must go on without a gap or a repeat.
W&B cannot rewrite history, and a job killed with SIGKILL (or on a failed node) loses what wandb-core had not yet
written: it flushes the `.wandb` file only every 15 s (`x_transaction_log_flush_interval`) and shuts down without
a flush when its parent dies; uploads run on their own schedule. So the W&B history may stop well before the
checkpoint the job resumes from, and a resumed job cannot recompute those steps. It therefore first finds the last
step W&B really holds (online: the server's `run.step - 1`; offline: the previous jobs' offline files of this
run), re-sends the steps after it up to the checkpoint from metrics.jsonl (written at every log, so it survives a
kill), and from then on sends only steps after that last step.
"""

from __future__ import annotations

import glob
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

# The transaction log is LevelDB's log format after a 7-byte ":W&B" header: 32 KiB blocks of records, each a
# CRC-32 (of type + payload), a 2-byte length and a type (FULL, FIRST, MIDDLE, LAST) before its payload.
BLOCK_SIZE, RECORD_HEADER, FILE_HEADER = 32768, 7, 7
FULL, FIRST, LAST = 1, 2, 4


def read_transaction_log(path: str | os.PathLike, strict: bool = False):
    """Yield the wandb `Record` protobufs of a `.wandb` file (wandb 0.31 ships no Python reader).

    A job killed mid-write leaves a cut-off or unwritten tail: reading stops there, or raises ValueError if
    `strict` (for tests of files that must be whole).
    """
    from wandb.proto import wandb_internal_pb2  # lazily: W&B is optional and slow to import

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    position, pending = FILE_HEADER, b""
    while position + RECORD_HEADER <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < RECORD_HEADER:  # the block's tail is zero padding
            position += left_in_block
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + RECORD_HEADER])
        payload = data[position + RECORD_HEADER : position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if len(payload) < length or zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF != checksum:
            if strict:
                raise ValueError(f"{path}: cut-off or corrupt record at byte {position - RECORD_HEADER - length}")
            return
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def last_logged_step(log_files) -> int:
    """The largest history step (`_step`) the given `.wandb` files hold; -1 when they hold none."""
    last = -1
    for path in log_files:
        for record in read_transaction_log(path):
            for item in record.history.item if record.HasField("history") else ():
                if (item.key or "/".join(item.nested_key)) == "_step":  # wandb-core fills nested_key
                    last = max(last, int(json.loads(item.value_json)))
    return last


def earlier_job_files(wandb_dir: str, run_id: str, own_file: str) -> list[str]:
    """The offline transaction logs of run `run_id`'s earlier jobs under `wandb_dir`, but `own_file` (this job's):
    offline-run-<time>-<id>[-<n>]/run-<id>.wandb (W&B adds -<n> when a job starts in the same second as the last)."""
    pattern = os.path.join(wandb_dir, "offline-run-*", f"run-{run_id}.wandb")
    own = os.path.abspath(own_file)
    return sorted(path for path in glob.glob(pattern) if os.path.abspath(path) != own)


@dataclass(frozen=True)
class WandBSettings:
    """Where a run's W&B records go (the config's wandb_* keys) and, on resume, the run to continue."""

    project: str
    group: str | None = None
    team: str | None = None
    run_name: str | None = None
    host: str | None = None
    run_id: str | None = None  # stored in the checkpoint: a resumed job continues this run
    config: dict | None = None  # the run's resolved config, shown in W&B


class WandBLogger:
    """Logs to Weights & Biases by `step=iteration`. `run_id` resumes that run; `history` (metrics.jsonl's records
    up to the checkpoint) then fills in the steps W&B lost (see the module docstring). A sink of
    `training.metrics` (its BaseLogger interface; not a subclass, as metrics imports this module)."""

    def __init__(self, settings: WandBSettings, wandb_dir: str | None = None, history: list[dict] | None = None):
        import wandb  # lazily: W&B is optional and slow to import

        # A W&B service inherited from a parent process (WANDB_SERVICE: a notebook, a test runner or a tool that
        # used wandb before starting this job) outlives the job: killed, it would leave our run id "in use" there,
        # and the resumed job could not continue the run. Each job gets its own, which ends with it.
        os.environ.pop("WANDB_SERVICE", None)
        if settings.host:
            os.environ["WANDB_BASE_URL"] = settings.host
        if wandb_dir:
            Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=settings.project,
            group=settings.group,
            entity=settings.team,
            name=settings.run_name,
            id=settings.run_id,
            resume="allow",
            dir=wandb_dir,
            config=settings.config or {},
        )
        self.last_step_of_previous_jobs = self._last_step_held() if settings.run_id else -1
        for record in history or []:
            self.log({key: value for key, value in record.items() if key != "iteration"}, record["iteration"])

    def _last_step_held(self) -> int:
        if not self.run.offline:
            return self.run.step - 1
        settings = self.run.settings
        return last_logged_step(earlier_job_files(settings.wandb_dir, self.run.id, settings.sync_file))

    @property
    def run_id(self) -> str:
        return self.run.id

    def log(self, metrics: dict, step: int) -> None:
        if step > self.last_step_of_previous_jobs:
            self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()
