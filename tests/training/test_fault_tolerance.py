"""Fault tolerance end to end on CPU: the real trainer in its own process (`python train.py -d DIR files`, one rank
as torchrun would start it), the real DeepSpeed engine, real checkpoint files and a real offline W&B run.

- SIGKILL at six moments (first job before its first checkpoint, random moments in training, inside a checkpoint
  save twice, inside a resumed job's start-up): every resume starts from the last complete checkpoint, and the
  final weights and every logged loss equal those of an uninterrupted run, bitwise.
- SIGTERM (to the trainer, then to its whole process group as Slurm sends it, DataLoader worker included): each
  job saves at the step it was in and exits 0, and the resumed job logs the uninterrupted run's losses.
- W&B offline: jobs killed with SIGKILL and the job resumed after them log into one run, every step once, every
  key, whether a killed job's offline file lost all its history (wandb flushes it every 15 s) or kept part of it.
- The plot command draws both panels from a real run; docs/loss-and-throughput.png is such a plot.

Non-finite steps: test_nonfinite_steps.py; the jobs: train_jobs.py.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neox_metala import plot
from neox_metala.training.checkpoint import COMPLETE_MARKER
from neox_metala.training.wandb_sink import last_logged_step

from dist_helpers import run_workers
from hooked_train import SAVE_PAUSE_TEST_HOOK
from runtime_helpers import (
    REPO,
    TRAIN_ITERS,
    Job,
    assert_bitwise_equal,
    complete_steps,
    expected_resume,
    job_configs,
    last_logged,
    metrics,
    model_weights,
    no_job_outlives_its_test,  # noqa: F401  (autouse: a failed test leaves no job running)
    train_losses,
    train_worker,
)
from wandb_offline import read_wandb_history

pytestmark = pytest.mark.multiproc
TRAIN_KEYS = ("loss", "lr", "grad_norm", "tokens_per_second", "tflops_per_gpu")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, sample_data):
    """The reference: JOB_MODEL trained to the end in one uninterrupted run of the trainer's `main` (train.py's),
    in a fresh process from the test fork server (tests/dist_helpers.py: no interpreter start-up and imports to
    pay; the jobs under test are real train.py processes). Returns its folder (ckpt/, run/)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    config_dir, files = job_configs(tmp, "job", sample_data)
    (exit_code,) = run_workers(train_worker, 1, tmp / "ranks", argv=["-d", str(config_dir), *files])
    assert exit_code == 0
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


def resume_lines(job) -> str:
    """What this job logged about choosing its checkpoint (a wrong resume is then explained by the failure)."""
    lines = [line for line in job.log().splitlines() if re.search(r"checkpoint|resum|latest|global_step", line)]
    return "\n  this job's checkpoint lines:\n    " + "\n    ".join(lines[-12:]) if lines else ""


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
    config_dir, files = job_configs(tmp_path, "job", sample_data)
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
        context = f"seed {seed}, kills so far:\n" + "\n".join(kills) + resume_lines(job)
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


SIGNALS = [  # (where SIGTERM goes, the iteration logged before it is sent)
    ("process", 10),  # the trainer alone
    ("group", 20),  # the trainer's process group, DataLoader worker included, as Slurm signals a job step
]


def test_sigterm_saves_within_one_step_and_the_resume_continues_exactly(tmp_path, sample_data, uninterrupted):
    """One chain of jobs, for both targets: SIGTERM to the trainer, then to the resumed job's whole process group;
    each job saves at the step it was in and exits 0, and the job resumed after them logs the uninterrupted run's
    losses and ends with its weights. (One DataLoader worker throughout, so that the group has one to signal.)"""
    config_dir, files = job_configs(tmp_path, "job", sample_data, checkpoint_factor=1000, num_workers=1)
    run_dir, ckpt = tmp_path / "job/run", tmp_path / "job/ckpt"
    stops = []
    for attempt, (target, after) in enumerate(SIGNALS):
        job = Job(config_dir, files, tmp_path / f"job{attempt}.log")
        job.wait_until(lambda after=after: last_logged(run_dir) >= after, f"iteration {after}")
        signalled_after, signalled_at = last_logged(run_dir), time.monotonic()
        if target == "group":
            job.kill_group(signal.SIGTERM)
        else:
            job.process.send_signal(signal.SIGTERM)
        assert job.wait(timeout=60) == 0, f"SIGTERM to the {target}:\n{job.log()[-3000:]}"
        seconds_to_exit = time.monotonic() - signalled_at
        assert job.resumed_iteration() == (stops[-1] if stops else None), f"SIGTERM to the {target}"
        stopped = re.search(r"stopping at iteration (\d+): received SIGTERM", job.log())
        assert stopped, f"SIGTERM to the {target}:\n{job.log()[-3000:]}"
        stop = int(stopped.group(1))
        assert signalled_after <= stop <= signalled_after + 1, (target, signalled_after, stop)  # the step in progress
        assert (ckpt / "latest").read_text() == f"global_step{stop}", f"SIGTERM to the {target}"
        stops.append(stop)
        assert complete_steps(ckpt) == stops, f"SIGTERM to the {target}: only the SIGTERM saves are there"
        print(
            f"SIGTERM ({target}) after iteration {signalled_after} was logged: saved and stopped at {stop}, "
            f"exit 0 after {seconds_to_exit:.2f} s"
        )

    resumed = Job(config_dir, files, tmp_path / "job_last.log")
    assert resumed.wait() == 0, resumed.log()[-3000:]
    assert resumed.resumed_iteration() == stops[-1]
    losses, expected = train_losses(run_dir), train_losses(uninterrupted / "run")
    assert sorted(losses) == list(range(1, TRAIN_ITERS + 1))
    for iteration in range(stops[0] + 1, TRAIN_ITERS + 1):
        assert losses[iteration] == expected[iteration], f"iteration {iteration} (SIGTERM stops at {stops})"
    assert_bitwise_equal(model_weights(ckpt, TRAIN_ITERS), model_weights(uninterrupted / "ckpt", TRAIN_ITERS))


# ---------------------------------------------------------------------------------------------------------------
# W&B offline across a SIGKILL
# ---------------------------------------------------------------------------------------------------------------


KILLS = [  # (the job's WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL, the iteration logged before its SIGKILL)
    (None, 13),  # wandb's default, 15 s: the killed job's offline file keeps none of its history
    ("0.1", 26),  # the killed job's file keeps part of its history
]


def test_wandb_offline_run_continues_across_sigkills(tmp_path, sample_data, uninterrupted):
    """Two jobs killed with SIGKILL (one whose offline file lost all its history, one that kept part of it) and the
    job resumed after them log into one W&B run: every step once, every key, the uninterrupted run's losses."""
    config_dir, files = job_configs(tmp_path, "job", sample_data, use_wandb=True, wandb_project="neox-metala-test")
    run_dir, ckpt = tmp_path / "job/run", tmp_path / "job/ckpt"
    checkpoint_at, notes = None, []
    for attempt, (flush_interval, kill_after) in enumerate(KILLS):
        env = {"WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL": flush_interval} if flush_interval else {}
        job = Job(config_dir, files, tmp_path / f"job{attempt}.log", env)
        job.wait_until(lambda n=kill_after: last_logged(run_dir) >= n, f"iteration {kill_after}")
        job.kill_group(signal.SIGKILL)
        job.process.wait()
        assert job.resumed_iteration() == checkpoint_at, f"job {attempt} ({flush_interval or 'default'} s flushes)"
        killed_at, checkpoint_at = last_logged(run_dir), expected_resume(ckpt)
        killed_file = sorted((run_dir / "wandb").glob("offline-run-*/*.wandb"))[-1]
        held_by_killed_job = last_logged_step([killed_file])
        if flush_interval:  # some steps of the run come from the killed job's file
            assert held_by_killed_job > 0, f"job {attempt}: {flush_interval} s flushes, but its file holds no step"
        notes.append(
            f"{flush_interval or 'default'} s flushes: killed after iteration {killed_at} was logged, the last "
            f"checkpoint at {checkpoint_at}; its offline file held steps up to {held_by_killed_job} "
            f"({killed_file.stat().st_size} bytes)"
        )
    resumed = Job(config_dir, files, tmp_path / "job_last.log")
    assert resumed.wait() == 0, resumed.log()[-3000:]
    assert resumed.resumed_iteration() == checkpoint_at

    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    run_ids = {folder.name.rsplit("-", 1)[1] for folder in folders}
    assert len(folders) == len(KILLS) + 1 and len(run_ids) == 1, folders  # three jobs, one run
    ids_in_records, rows = read_wandb_history(run_dir)
    assert set(ids_in_records) == run_ids
    train_rows = [row for row in rows if "loss" in row]
    assert [row["_step"] for row in train_rows] == list(range(1, TRAIN_ITERS + 1)), f"no gap, no repeat; {notes}"
    expected = train_losses(uninterrupted / "run")
    for row in train_rows:
        assert all(key in row for key in TRAIN_KEYS), row
        assert row["loss"] == expected[row["_step"]], row["_step"]
    print("W&B: " + "; ".join(notes))


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
