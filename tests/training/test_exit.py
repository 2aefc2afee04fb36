"""A run ends when its work ends, through the user's command (deepy.py -> its ranks -> train.py) with DataLoader
workers (num_workers 2, which start with the preemption signals blocked and cannot be SIGTERMed):

- normal end of a two-stage pipeline (the pipeline engine keeps a reference to the last data stream): it trains,
  saves each stage's layers, and exits 0 within seconds of the last iteration, every process of the run gone;
- an exception mid-run (a `save` folder that became unwritable, a shard with out-of-vocabulary tokens on the first
  of two pipeline stages): deepy.py and every rank exit non-zero within 30 s of the error;
- SIGTERM to deepy.py mid-run: every rank saves the step it is in and the command exits 0.
Before the fix, the first two hung forever at interpreter exit (multiprocessing joining the workers).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from dist_helpers import free_port
from runtime_helpers import REPO, SMALL_MODEL, lost_its_port, sample_data_settings, train_losses, write_configs

pytestmark = pytest.mark.multiproc
PROMPT_EXIT_SECONDS = 30


class DeepyRun:
    """`python deepy.py train.py -d DIR files` with 2 CPU ranks, in a session of its own, output in a log file."""

    def __init__(self, tmp_path: Path, model: dict, data: dict, run: dict):
        self.log_path = tmp_path / "deepy.log"
        self.configs = (tmp_path / "configs", {**SMALL_MODEL, "num_workers": 2, **model}, data, run)
        self.starts = 0
        self.descendants: set[int] = set()
        self._start()

    def _start(self) -> None:
        directory, model, data, run = self.configs
        files = write_configs(directory, model=model, data=data, run={"num_gpus": 2, "master_port": free_port(), **run})
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "DS_ACCELERATOR": "cpu"}
        self.starts += 1
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "deepy.py", "train.py", "-d", str(directory), *files],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _lost_its_port(self) -> bool:
        """runtime_helpers.lost_its_port, at most three starts in all."""
        return lost_its_port(self.log()) and self.starts < 3

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, pattern: str, timeout: float = 180) -> float:
        """Monotonic time at which `pattern` first appeared in the log, recording the run's processes meanwhile."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.log()):
            self._record_descendants()
            if self.process.poll() is not None and not re.search(pattern, self.log()):
                if self._lost_its_port():
                    self._start()
                    continue
                raise AssertionError(f"ended ({self.process.returncode}) before {pattern!r}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no {pattern!r} after {timeout} s:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        self._record_descendants()
        return time.monotonic()

    def _record_descendants(self) -> None:
        try:
            self.descendants |= {p.pid for p in psutil.Process(self.process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def wait_exit(self, since: float, limit: float = PROMPT_EXIT_SECONDS) -> int:
        try:
            code = self.process.wait(timeout=max(1.0, since + limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {limit} s later:\n{self.log()[-4000:]}") from None
        deadline = time.monotonic() + 5  # the last workers may still be on their way out
        while self.alive_descendants() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.alive_descendants(), f"left running: {self.alive_descendants()}"
        return code

    def alive_descendants(self) -> list[int]:
        alive = []
        for pid in self.descendants:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def kill(self) -> None:
        for pid in [self.process.pid, *self.alive_descendants()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def data(sample_data):
    return sample_data_settings(sample_data)


def test_normal_end_of_a_two_stage_pipeline_exits_promptly(tmp_path, data):
    """deepy.py starts a two-stage pipeline (PP=2 on its 2 CPU ranks), which trains, saves each stage's layers and
    logs every iteration, and the whole run is gone within seconds of the last one."""
    run = DeepyRun(
        tmp_path,
        {"pipe_parallel_size": 2, "train_iters": 6, "eval_interval": 3, "checkpoint_factor": 3},
        data,
        {"save": str(tmp_path / "ckpt"), "log_dir": str(tmp_path / "run")},
    )
    last_iteration = run.wait_for(r"iteration 6/6")
    assert run.wait_exit(last_iteration) == 0, run.log()[-4000:]
    step_dir = tmp_path / "ckpt" / "global_step6"
    assert (step_dir / "complete.json").exists()
    layer_files = sorted(name for name in os.listdir(step_dir) if name.startswith("layer_"))
    assert len(layer_files) == 1 + 2 + 1, layer_files  # embedding, 2 blocks, final norm (tied head: no file)
    assert sorted(train_losses(tmp_path / "run")) == list(range(1, 7))


def test_save_that_became_unwritable_mid_run_exits_non_zero_promptly(tmp_path, data):
    """`save` is checked at start; here it turns into a file after the first step (a full or lost filesystem
    would do the same), so the first checkpoint, at iteration 12, fails with the workers running."""
    save = tmp_path / "ckpt"
    run = DeepyRun(
        tmp_path,
        {"train_iters": 14, "checkpoint_factor": 12, "eval_interval": 1000},
        data,
        {"save": str(save), "log_dir": str(tmp_path / "run")},
    )
    run.wait_for(r"iteration 1/14")
    shutil.rmtree(save)
    save.write_text("no longer a folder")
    failed = run.wait_for(r"NotADirectoryError|FileExistsError|Not a directory")
    assert "iteration 12/14" in run.log()  # it failed mid-run, at its first save
    assert run.wait_exit(failed) != 0


def out_of_vocabulary_copy(prefix: str, directory: Path) -> str:
    """A copy of a shard whose every token id is beyond the vocabulary (as if tokenized with another tokenizer)."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    directory.mkdir()
    for path in Path(prefix).parent.glob(Path(prefix).name + ".*"):
        shutil.copy(path, directory / path.name)
    copy = str(directory / Path(prefix).name)
    dtype = IndexedDataset(copy).index.dtype
    tokens = np.memmap(copy + ".bin", dtype=dtype, mode="r+")
    tokens[:] = np.iinfo(dtype).max if np.iinfo(dtype).max < 2**20 else 2**20
    tokens.flush()
    return copy


def test_bad_shard_on_the_first_pipeline_stage_exits_every_rank_promptly(tmp_path, data):
    bad = out_of_vocabulary_copy(data["train_data_paths"][0], tmp_path / "bad")
    run = DeepyRun(
        tmp_path,
        {"pipe_parallel_size": 2, "train_iters": 8},
        {**data, "train_data_paths": [bad]},
        {"log_dir": str(tmp_path / "run")},
    )
    failed = run.wait_for(r"IndexError|index out of range")
    assert run.wait_exit(failed) != 0


def test_sigterm_to_deepy_saves_and_exits_zero(tmp_path, data):
    run = DeepyRun(
        tmp_path,
        {"train_iters": 1000, "checkpoint_factor": 1000, "eval_interval": 1000},
        data,
        {"save": str(tmp_path / "ckpt"), "log_dir": str(tmp_path / "run")},
    )
    run.wait_for(r"iteration 3/1000")
    signalled = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    assert run.wait_exit(signalled) == 0, run.log()[-4000:]
    stopped = re.search(r"stopping at iteration (\d+): received SIGTERM", run.log())
    assert stopped, run.log()[-4000:]
    assert (tmp_path / "ckpt" / f"global_step{stopped.group(1)}" / "complete.json").exists()
