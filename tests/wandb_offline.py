"""Reading back W&B offline runs in tests: the records and history rows of RUN_DIR/wandb/offline-run-*/*.wandb,
through the trainer's own transaction-log reader (`neox_metala.training.wandb_sink`), strict for finished files."""

from __future__ import annotations

import json
import time
from pathlib import Path

from neox_metala.training.wandb_sink import read_transaction_log


def read_finished_wandb_run(log_file: Path, timeout_seconds: float = 60.0):
    """The file's records once its `exit` record is there: wandb-core writes the offline file in its own
    process and may still be flushing for a moment after `run.finish()` has returned."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:  # mid-flush, the tail is a record cut off: strict only once the deadline has passed
            records = list(read_transaction_log(log_file, strict=True))
        except ValueError:
            if time.monotonic() > deadline:
                raise
            records = []
        if any(record.HasField("exit") for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def read_wandb_history(wandb_dir: Path):
    """All offline runs under wandb_dir, in start order: (run ids, history rows as {key: value}).

    Only the newest run is waited for (until its `exit` record) and read strictly: earlier jobs ended before it
    started, and one killed with SIGKILL leaves a file with no exit record and possibly a cut-off tail.
    """
    run_ids, rows = [], []
    run_dirs = sorted((wandb_dir / "wandb").glob("offline-run-*"))
    for index, run_dir in enumerate(run_dirs):
        (log_file,) = run_dir.glob("*.wandb")
        newest = index == len(run_dirs) - 1
        for record in read_finished_wandb_run(log_file) if newest else read_transaction_log(log_file):
            if record.HasField("run"):
                run_ids.append(record.run.run_id)
            if record.HasField("history"):
                rows.append(
                    {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                )
    return run_ids, rows
