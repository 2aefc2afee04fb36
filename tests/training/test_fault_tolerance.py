"""Fault tolerance end to end on CPU: the real trainer in its own process (`python train.py -d DIR files`, one rank
as torchrun would start it), the real DeepSpeed engine, real checkpoint files and a real offline W&B run.

- SIGKILL at six moments (first job before its first checkpoint, random moments in training, inside a checkpoint
  save twice, inside a resumed job's start-up): every resume starts from the last complete checkpoint, and the
  final weights and every logged loss equal those of an uninterrupted run, bitwise.
- SIGTERM (to the trainer, and to its whole process group as Slurm sends it, DataLoader worker included): the job
  saves at the step it was in, exits 0, and the resumed job logs the uninterrupted run's losses.
- NaN test hook: one poisoned step is skipped (weights unchanged, counted), consecutive ones stop the run with
  exit code 3 and a message; ZeRO stage 0, which cannot skip, stops at the first one.
- W&B offline: a job killed with SIGKILL and its resumed job log into one run, every step once, every key,
  whether the killed job's offline file lost all its history (wandb flushes it every 15 s) or kept part of it.
- The plot command draws both panels from a real run; docs/loss-and-throughput.png is such a plot.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neox_metala import plot
from neox_metala.training.checkpoint import COMPLETE_MARKER
from neox_metala.training.wandb_sink import last_logged_step

from dist_helpers import free_port
from hooked_train import NAN_TEST_HOOK, SAVE_PAUSE_TEST_HOOK, SCRIPT
from runtime_helpers import REPO, SMALL_MODEL, metrics, sample_data_settings, train_losses, write_configs
from wandb_offline import read_wandb_history

pytestmark = pytest.mark.multiproc
TRAIN_ITERS = 40
MODEL = {**SMALL_MODEL, "train_iters": TRAIN_ITERS, "checkpoint_factor": 2, "keep_last_n_checkpoints": 2}
TRAIN_KEYS = ("loss", "lr", "grad_norm", "tokens_per_second", "tflops_per_gpu")
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


def configs(tmp: Path, name: str, sample_data: dict, **settings) -> tuple[Path, list[str]]:
    """Config files for job `name`: the shared small model, the sample corpus, and checkpoints + metrics in tmp."""
    setup = {"save": str(tmp / name / "ckpt"), "load": str(tmp / name / "ckpt"), "log_dir": str(tmp / name / "run")}
    files = write_configs(
        tmp / name / "configs", model={**MODEL, **settings}, data=sample_data_settings(sample_data), setup=setup
    )
    return tmp / name / "configs", files


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, sample_data):
    """The reference: MODEL trained to the end in one job. Returns its folder (ckpt/, run/)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    job = Job(*configs(tmp, "job", sample_data), tmp / "job.log")
    assert job.wait() == 0, job.log()[-3000:]
    return tmp / "job"


# ---------------------------------------------------------------------------------------------------------------
# SIGKILL at any moment
# ---------------------------------------------------------------------------------------------------------------


def kill_after_first_step(job, run_dir, ckpt, rng):
    job.wait_until(lambda: last_logged(run_dir) >= 1, "a first logged step")
    return "after the first logged step, before the first checkpoint"


def kill_in_training(job, run_dir, ckpt, rng):
    start = last_logged(run_dir)
    job.wait_until(lambda: last_logged(run_dir) > start, "a new logged step")
    delay = rng.uniform(0.0, 0.6)
    time.sleep(delay)
    return f"{delay:.3f} s after the job's first new step"


def kill_in_deepspeed_write(job, run_dir, ckpt, rng):
    """As soon as this job writes a model file into a step folder without a marker: DeepSpeed is saving. (A folder
    an earlier kill left unfinished is rewritten in place, hence the file's time, not the folder's existence.)"""

    def saving():
        for model_file in ckpt.glob("global_step*/mp_rank_00_model_states.pt"):
            try:
                written_now = model_file.stat().st_mtime >= job.started_wall
                if written_now and not (model_file.parent / COMPLETE_MARKER).exists():
                    return True
            except FileNotFoundError:  # pruned meanwhile
                pass
        return False

    job.wait_until(saving, "a checkpoint save in progress")
    return "as this job wrote a model file into a step folder without a marker (checkpoint save in progress)"


def kill_in_held_save(job, run_dir, ckpt, rng):
    job.wait_until(lambda: "holding the save of iteration" in job.log(), "the held save")
    return "inside a held save: DeepSpeed files written, no RNG state, no marker"


def kill_in_startup(job, run_dir, ckpt, rng):
    delay = rng.uniform(0.5, 5.0)
    job.wait_until(lambda: time.monotonic() - job.started >= delay, "the kill moment")
    return f"{delay:.2f} s after the job started (imports, engine, checkpoint load)"


KILL_MOMENTS = [
    kill_after_first_step,
    kill_in_training,
    kill_in_deepspeed_write,
    kill_in_held_save,
    kill_in_startup,
    kill_in_training,
]


def test_sigkill_at_six_moments_resumes_to_the_uninterrupted_weights(tmp_path, sample_data, uninterrupted):
    seed = int(os.environ.get("NEOX_METALA_TEST_KILL_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    config_dir, files = configs(tmp_path, "job", sample_data)
    run_dir, ckpt = tmp_path / "job/run", tmp_path / "job/ckpt"
    kills = []
    for attempt, moment in enumerate(KILL_MOMENTS + [None]):
        env = {}
        if moment is kill_in_held_save:  # hold the save two steps after the last complete checkpoint
            env[SAVE_PAUSE_TEST_HOOK] = str(max(complete_steps(ckpt), default=0) + 2)
        expected = expected_resume(ckpt)
        job = Job(config_dir, files, tmp_path / f"job{attempt}.log", env)
        if moment is None:
            assert job.wait() == 0, job.log()[-3000:]
        else:
            description = moment(job, run_dir, ckpt, rng)
            job.kill_group(signal.SIGKILL)
            job.process.wait()
            if moment is kill_in_held_save:  # the weights are there, the marker is not (nor, as a rule, the RNG)
                held = {f.name for f in (ckpt / f"global_step{env[SAVE_PAUSE_TEST_HOOK]}").iterdir()}
                assert {"mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt"} <= held
                assert COMPLETE_MARKER not in held, held
            unfinished = {
                d.name: {f.name: f.stat().st_size for f in d.iterdir()}
                for d in ckpt.glob("global_step*")
                if not (d / COMPLETE_MARKER).exists()
            }
            kills.append(
                f"{moment.__name__}: {description}; iteration {last_logged(run_dir)} logged; "
                f"complete steps {complete_steps(ckpt)}; unfinished folders (file sizes) {unfinished}"
            )
        context = f"seed {seed}, kills so far:\n" + "\n".join(kills)
        resumed = job.resumed_iteration()
        if expected:  # the job logs its resume at once after loading; a kill in start-up may come before
            assert resumed in (expected, None), f"job {attempt} resumed from {resumed}, not {expected}; {context}"
            assert resumed == expected or moment is kill_in_startup, f"job {attempt} did not resume; {context}"
        else:
            assert resumed is None and "starting from scratch" in job.log() or moment is kill_in_startup, context
    print(context)  # the measured moments, shown with -s

    assert (ckpt / "latest").read_text() == f"global_step{TRAIN_ITERS}"
    reference = uninterrupted / "ckpt"
    max_difference = assert_bitwise_equal(model_weights(ckpt, TRAIN_ITERS), model_weights(reference, TRAIN_ITERS))
    assert max_difference == 0.0
    got, expected_records = metrics(run_dir), metrics(uninterrupted / "run")
    train = [r["iteration"] for r in got if "loss" in r]
    assert train == list(range(1, TRAIN_ITERS + 1)), f"every iteration logged once, in order; {context}"
    assert train_losses(run_dir) == train_losses(uninterrupted / "run"), context
    evaluations = [(r["iteration"], r["eval/loss"]) for r in got if "eval/loss" in r]
    assert evaluations == [(r["iteration"], r["eval/loss"]) for r in expected_records if "eval/loss" in r]


# ---------------------------------------------------------------------------------------------------------------
# SIGTERM: save at the current step, exit 0, resume exactly
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("process", id="trainer"),
        pytest.param("group", id="process-group-with-dataloader-worker"),  # as Slurm signals a job step
    ],
)
def test_sigterm_saves_within_one_step_and_the_resume_continues_exactly(tmp_path, sample_data, uninterrupted, target):
    workers = 1 if target == "group" else 0
    config_dir, files = configs(tmp_path, "job", sample_data, checkpoint_factor=1000, num_workers=workers)
    run_dir, ckpt = tmp_path / "job/run", tmp_path / "job/ckpt"
    job = Job(config_dir, files, tmp_path / "job0.log")
    job.wait_until(lambda: last_logged(run_dir) >= 10, "iteration 10")
    signalled_after, signalled_at = last_logged(run_dir), time.monotonic()
    if target == "group":
        job.kill_group(signal.SIGTERM)
    else:
        job.process.send_signal(signal.SIGTERM)
    assert job.wait(timeout=60) == 0, job.log()[-3000:]
    seconds_to_exit = time.monotonic() - signalled_at
    stopped = re.search(r"stopping at iteration (\d+): received SIGTERM", job.log())
    assert stopped, job.log()[-3000:]
    stop = int(stopped.group(1))
    assert signalled_after <= stop <= signalled_after + 1, (signalled_after, stop)  # the step in progress only
    assert (ckpt / "latest").read_text() == f"global_step{stop}"
    assert complete_steps(ckpt) == [stop]
    print(
        f"SIGTERM ({target}) after iteration {signalled_after} was logged: saved and stopped at {stop}, "
        f"exit 0 after {seconds_to_exit:.2f} s"
    )

    resumed = Job(config_dir, files, tmp_path / "job1.log")
    assert resumed.wait() == 0, resumed.log()[-3000:]
    assert resumed.resumed_iteration() == stop
    losses, expected = train_losses(run_dir), train_losses(uninterrupted / "run")
    assert sorted(losses) == list(range(1, TRAIN_ITERS + 1))
    for iteration in range(stop + 1, TRAIN_ITERS + 1):
        assert losses[iteration] == expected[iteration], f"iteration {iteration}"
    assert_bitwise_equal(model_weights(ckpt, TRAIN_ITERS), model_weights(uninterrupted / "ckpt", TRAIN_ITERS))


# ---------------------------------------------------------------------------------------------------------------
# Non-finite steps
# ---------------------------------------------------------------------------------------------------------------


def test_a_nan_step_is_skipped_and_consecutive_nans_stop_the_run(tmp_path, sample_data):
    """Iteration 3 poisoned: skipped (step 3's weights are step 2's), then training goes on; 6, 7, 8 poisoned with
    max_consecutive_nonfinite 3: exit code 3 at iteration 8 with a message that says what to do."""
    config_dir, files = configs(
        tmp_path,
        "job",
        sample_data,
        train_iters=12,
        checkpoint_factor=1,
        keep_last_n_checkpoints=None,
        max_consecutive_nonfinite=3,
        eval_iters=0,
    )
    job = Job(config_dir, files, tmp_path / "job.log", {NAN_TEST_HOOK: "3,6,7,8"})
    assert job.wait() == 3, job.log()[-3000:]
    assert "stopping: 3 consecutive steps (up to iteration 8) had a non-finite loss or gradient norm" in job.log()
    assert "resume from the last checkpoint in" in job.log()

    records = {r["iteration"]: r for r in metrics(tmp_path / "job/run")}
    assert sorted(records) == list(range(1, 9))
    for iteration, record in records.items():
        poisoned = iteration in (3, 6, 7, 8)
        assert record["skipped_steps"] == int(poisoned), record
        assert ("loss" in record) == (not poisoned), record  # a skipped step's loss stays out of the numbers
        assert poisoned or (math.isfinite(record["loss"]) and math.isfinite(record["grad_norm"])), record
    assert [records[i]["skipped_steps_total"] for i in (2, 3, 5, 8)] == [0, 1, 1, 4]

    ckpt = tmp_path / "job/ckpt"
    assert_bitwise_equal(model_weights(ckpt, 3), model_weights(ckpt, 2))  # the NaN update was not applied
    after = model_weights(ckpt, 4)
    assert all(torch.isfinite(t).all() for t in after.values())
    assert any(not torch.equal(after[k], model_weights(ckpt, 3)[k]) for k in after)  # and training went on
    assert complete_steps(ckpt)[-1] == 7  # the stop at 8 saves nothing


def test_zero_stage_0_cannot_skip_so_a_nan_stops_the_run_before_it_is_saved(tmp_path, sample_data):
    config_dir, files = configs(
        tmp_path,
        "job",
        sample_data,
        train_iters=6,
        checkpoint_factor=1,
        keep_last_n_checkpoints=None,
        zero_optimization={"stage": 0},
        eval_iters=0,
    )
    job = Job(config_dir, files, tmp_path / "job.log", {NAN_TEST_HOOK: "3"})
    assert job.wait() == 3, job.log()[-3000:]
    assert "iteration 3 had a non-finite loss and its update was applied (zero_optimization stage 0" in job.log()
    assert complete_steps(tmp_path / "job/ckpt") == [1, 2]


# ---------------------------------------------------------------------------------------------------------------
# W&B offline across a SIGKILL
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flush_interval",
    [
        pytest.param(None, id="killed-job-history-lost"),  # wandb's default, 15 s: the killed job's file stays empty
        pytest.param("0.1", id="killed-job-history-partly-written"),
    ],
)
def test_wandb_offline_run_continues_across_a_sigkill(tmp_path, sample_data, uninterrupted, flush_interval):
    config_dir, files = configs(tmp_path, "job", sample_data, use_wandb=True, wandb_project="neox-metala-test")
    run_dir, ckpt = tmp_path / "job/run", tmp_path / "job/ckpt"
    env = {"WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL": flush_interval} if flush_interval else {}
    job = Job(config_dir, files, tmp_path / "job0.log", env)
    job.wait_until(lambda: last_logged(run_dir) >= 13, "iteration 13")
    job.kill_group(signal.SIGKILL)
    job.process.wait()
    killed_at, checkpoint_at = last_logged(run_dir), expected_resume(ckpt)
    (killed_file,) = (run_dir / "wandb").glob("offline-run-*/*.wandb")
    held_by_killed_job = last_logged_step([killed_file])
    resumed = Job(config_dir, files, tmp_path / "job1.log", env)
    assert resumed.wait() == 0, resumed.log()[-3000:]
    assert resumed.resumed_iteration() == checkpoint_at

    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    run_ids = {folder.name.rsplit("-", 1)[1] for folder in folders}
    assert len(folders) == 2 and len(run_ids) == 1, folders  # two jobs, one run
    ids_in_records, rows = read_wandb_history(run_dir)
    assert set(ids_in_records) == run_ids
    train_rows = [row for row in rows if "loss" in row]
    assert [row["_step"] for row in train_rows] == list(range(1, TRAIN_ITERS + 1)), "no gap, no repeat"
    expected = train_losses(uninterrupted / "run")
    for row in train_rows:
        assert all(key in row for key in TRAIN_KEYS), row
        assert row["loss"] == expected[row["_step"]], row["_step"]
    assert flush_interval is None or held_by_killed_job > 0  # the other case: some steps came from the killed job
    print(
        f"W&B ({flush_interval or 'default'} s flushes): killed after iteration {killed_at} was logged, resumed "
        f"from {checkpoint_at}; the killed job's offline file held steps up to {held_by_killed_job} "
        f"({killed_file.stat().st_size} bytes)"
    )


# ---------------------------------------------------------------------------------------------------------------
# The plot
# ---------------------------------------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_of_a_real_run_has_both_panels(tmp_path, uninterrupted):
    output = tmp_path / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", "neox_metala.plot", str(uninterrupted / "run"), "-o", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == str(output), result.stderr
    assert png_size(output) == (1000, 700) and output.stat().st_size > 20_000
    figure = plot.make_figure(plot.load_metrics(uninterrupted / "run" / "metrics.jsonl"))
    loss_axes, throughput_axes = figure.axes
    train, evaluation = loss_axes.get_lines()
    assert list(train.get_xdata()) == list(range(1, TRAIN_ITERS + 1))
    assert list(evaluation.get_xdata()) == list(range(4, TRAIN_ITERS + 1, 4))
    (throughput,) = throughput_axes.get_lines()
    assert len(throughput.get_xdata()) == TRAIN_ITERS and min(throughput.get_ydata()) > 0
    assert png_size(REPO / "docs" / "loss-and-throughput.png") == (1000, 700)  # the committed example
