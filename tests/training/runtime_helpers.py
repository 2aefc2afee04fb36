"""Small real training runs for the runtime tests: YAML files on disk, the bundled sample corpus, real engines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from neox_metala.training.checkpoint import COMPLETE_MARKER

from dist_helpers import free_port, run_workers
from hooked_train import NAN_TEST_HOOK, SAVE_PAUSE_TEST_HOOK, SCRIPT

REPO = Path(__file__).resolve().parents[2]

SMALL_MODEL = {
    "num_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "seq_length": 32,
    "attention_config": [[["metala"], 2]],
    "norm": "rmsnorm",
    "metala_chunk_size": 16,
    "optimizer": {"type": "AdamW", "params": {"lr": 0.003, "betas": [0.9, 0.95], "eps": 1.0e-8}},
    "lr_decay_style": "cosine",
    "warmup": 0.1,
    "min_lr": 0.0003,
    "gradient_clipping": 1.0,
    "zero_optimization": {"stage": 1},
    "precision": "fp32",
    "hidden_dropout": 0.1,
    "train_micro_batch_size_per_gpu": 2,
    "gradient_accumulation_steps": 2,
    "seed": 4321,
    "eval_interval": 4,
    "eval_iters": 1,
    "log_interval": 1,
    "num_workers": 0,
}


def sample_data_settings(sample: dict) -> dict:
    return {
        "train_data_paths": sample["train_data_paths"],
        "valid_data_paths": sample["valid_data_paths"],
        "test_data_paths": sample["test_data_paths"],
        "tokenizer_type": sample["tokenizer_type"],
        "vocab_file": sample["vocab_file"],
    }


def write_configs(directory: Path, **files: dict) -> list[str]:
    """Write {name: settings} as name.yml files; returns the file names in order."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, settings in files.items():
        (directory / f"{name}.yml").write_text(yaml.safe_dump(settings))
    return [f"{name}.yml" for name in files]


def setup_yaml(tmp: Path, name: str) -> dict:
    """save / load / log_dir under tmp/name, and a free port (tests may run side by side: pytest -n 2)."""
    return {
        "save": str(tmp / name / "ckpt"),
        "load": str(tmp / name / "ckpt"),
        "log_dir": str(tmp / name / "run"),
        "master_port": free_port(),
    }


def train_worker(rank, world_size, argv, environ=None):
    """One rank of `train.py -d DIR files` (in a process started by dist_helpers.run_workers)."""
    os.environ.update(environ or {})
    from neox_metala.training.trainer import main

    return main(argv)


def hooked_main_worker(rank, world_size, argv, log_path, environ=None):
    """hooked_train.py's work in a process from the test fork server (dist_helpers.run_workers): the test hooks its
    environment asks for, then the trainer's `main` (train.py's), the process's output (fds 1 and 2) written to
    `log_path`. Returns the exit code."""
    os.environ.update(environ or {})
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    from neox_metala.training.trainer import main

    from hooked_train import install_hooks

    install_hooks()
    try:
        return main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


@dataclass
class MainRun:
    returncode: int
    output: str  # stdout and stderr
    seconds: float


def run_main(config_dir: Path, files: list[str], log_path: Path, env: dict | None = None) -> MainRun:
    """`train.py -d config_dir files` with the test hooks set in `env`, as the trainer's `main` in a fresh process
    from the test fork server: what the checkpoint and non-finite tests check is the trainer's work, not the
    interpreter start-up that a train.py process would add (the fault-tolerance jobs are real processes)."""
    started = time.monotonic()
    argv = ["-d", str(config_dir), *files]
    (code,) = run_workers(hooked_main_worker, 1, f"{log_path}.ranks", argv=argv, log_path=str(log_path), environ=env)
    return MainRun(code, Path(log_path).read_text(), time.monotonic() - started)


def bits(t: torch.Tensor) -> torch.Tensor:
    """t's bits as integers: torch.equal calls -0.0 and +0.0 equal, these compare every bit."""
    return t.detach().view(torch.int16 if t.element_size() == 2 else torch.int32)


def metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def train_losses(run_dir: Path) -> dict[int, float]:
    """iteration -> loss of the training records (log_interval 1: one step each)."""
    return {r["iteration"]: r["loss"] for r in metrics(run_dir) if "loss" in r}


def lost_its_port(output: str) -> bool:
    """Whether a deepy.py run's output shows it lost its rendezvous port before its first iteration: free_port's port
    is free when chosen, not when rank 0 binds it, and the other pytest worker's runs take ports from the same range
    (CI, session 17). Such a run is started again on a new port."""
    return "EADDRINUSE" in output and "iteration 1/" not in output


def run_deepy(config_dir: Path, files: list[str], timeout: int = 600, env: dict | None = None):
    """`python deepy.py train.py -d config_dir files` to its end; a run that lost its port (`lost_its_port`) starts
    again, at most twice, on a new port written into the files that set `master_port`."""
    command = [sys.executable, str(REPO / "deepy.py"), str(REPO / "train.py"), "-d", str(config_dir), *files]
    environment = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", **(env or {})}
    for _ in range(3):
        result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)
        if result.returncode == 0 or not lost_its_port(result.stdout + result.stderr):
            return result
        for name in files:
            path = config_dir / name
            if path.parent != config_dir:  # (the repository's own configs are never rewritten)
                continue
            settings = yaml.safe_load(path.read_text())
            if isinstance(settings, dict) and "master_port" in settings:
                path.write_text(yaml.safe_dump({**settings, "master_port": free_port()}))
    return result


# ---------------------------------------------------------------------------------------------------------------
# The fault-tolerance tests' jobs (test_fault_tolerance.py, test_nonfinite_steps.py): `python
# tests/training/hooked_train.py -d DIR files` (train.py with the test hooks) as real processes of their own, one
# rank as torchrun would start it, and what they leave on disk.
# ---------------------------------------------------------------------------------------------------------------

TRAIN_ITERS = 40  # a job of JOB_MODEL runs to this iteration
JOB_MODEL = {**SMALL_MODEL, "train_iters": TRAIN_ITERS, "checkpoint_factor": 2, "keep_last_n_checkpoints": 2}
RESUMED = re.compile(r"resumed from \S*global_step(\d+) at iteration (\d+)")
STARTED: list[Job] = []  # every job, so that a failed test leaves none running


@pytest.fixture(autouse=True)
def no_job_outlives_its_test():
    yield
    while STARTED:
        job = STARTED.pop()
        if job.process.poll() is None:
            job.kill_group(signal.SIGKILL)
            job.process.wait()


class Job:
    """One `python train.py -d DIR files` process, in a session of its own (so that a signal can go to its
    process group, as Slurm sends one), its output in `log_path`."""

    def __init__(self, config_dir: Path, files: list[str], log_path: Path, env: dict | None = None):
        environment = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "MASTER_PORT": str(free_port()),
            **(env or {}),
        }
        for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "WANDB_DIR", NAN_TEST_HOOK, SAVE_PAUSE_TEST_HOOK):
            if key not in (env or {}):
                environment.pop(key, None)
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "-d", str(config_dir), *files],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started, self.started_wall = time.monotonic(), time.time()
        STARTED.append(self)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group(signal.SIGKILL)
            raise AssertionError(f"{self.log_path} did not end in {timeout} s:\n{self.log()[-3000:]}") from None

    def kill_group(self, sig: int) -> None:
        """`sig` to the trainer and its children (wandb-core, DataLoader workers), as a node failure or Slurm."""
        os.killpg(self.process.pid, sig)

    def wait_until(self, condition, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"the job ended ({self.process.returncode}) before {what}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.002)

    def resumed_iteration(self) -> int | None:
        """The iteration this job resumed from, None if it has not logged a resume (yet)."""
        found = RESUMED.search(self.log())
        return int(found.group(1)) if found else None


def last_logged(run_dir: Path) -> int:
    """The newest iteration in metrics.jsonl (0 if none); a line being written is skipped."""
    path = run_dir / "metrics.jsonl"
    iterations = [0]
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            iterations.append(json.loads(line)["iteration"])
        except json.JSONDecodeError:
            pass
    return max(iterations)


def complete_steps(ckpt: Path) -> list[int]:
    return sorted(
        int(d.name[len("global_step") :]) for d in ckpt.glob("global_step*") if (d / COMPLETE_MARKER).exists()
    )


def expected_resume(ckpt: Path) -> int:
    """The last complete checkpoint (0: none, a fresh start). A kill between a step's marker and the rename of
    `latest` leaves a newer complete step that is not yet published: then `latest` is the last complete one."""
    steps = complete_steps(ckpt)
    latest = ckpt / "latest"
    if latest.exists() and steps and f"global_step{steps[-1]}" != latest.read_text().strip():
        return int(latest.read_text().strip()[len("global_step") :])
    return steps[-1] if steps else 0


def model_weights(ckpt: Path, iteration: int) -> dict[str, torch.Tensor]:
    path = ckpt / f"global_step{iteration}" / "mp_rank_00_model_states.pt"
    module = torch.load(path, map_location="cpu", weights_only=False)["module"]
    return {name: value for name, value in module.items() if isinstance(value, torch.Tensor)}  # not _extra_state


def assert_bitwise_equal(got: dict, expected: dict) -> float:
    assert got.keys() == expected.keys()
    max_difference = max((got[k].float() - expected[k].float()).abs().max().item() for k in got)
    for key in got:
        assert torch.equal(got[key], expected[key]), f"{key}: max |difference| {max_difference}"
    return max_difference


def job_configs(tmp: Path, name: str, sample_data: dict, **settings) -> tuple[Path, list[str]]:
    """Config files for job `name`: the shared small model, the sample corpus, and checkpoints + metrics in tmp."""
    setup = {"save": str(tmp / name / "ckpt"), "load": str(tmp / name / "ckpt"), "log_dir": str(tmp / name / "run")}
    files = write_configs(
        tmp / name / "configs", model={**JOB_MODEL, **settings}, data=sample_data_settings(sample_data), setup=setup
    )
    return tmp / name / "configs", files
