"""The training runtime end to end on CPU: exact resume (PP=1, PP=2, TP=2), the embedded default through
deepy.py, a 2-process pipeline through DeepSpeed's launcher, and refusing unusable checkpoints."""

import os

import pytest

from dist_helpers import run_workers
from runtime_helpers import (REPO, SMALL_MODEL, metrics, run_deepy, sample_data_settings, train_losses,
                             train_worker, write_configs)

pytestmark = pytest.mark.multiproc
STEPS = 8  # 2N


def setup_yaml(tmp, name):
    return {"save": str(tmp / name / "ckpt"), "load": str(tmp / name / "ckpt"), "log_dir": str(tmp / name / "run")}


@pytest.mark.parametrize("world_size,parallel", [
    pytest.param(1, {"pipe_parallel_size": 0}, id="pp1"),
    pytest.param(2, {"pipe_parallel_size": 2}, id="pp2"),
    pytest.param(2, {"pipe_parallel_size": 0, "model_parallel_size": 2}, id="tp2"),
])
def test_resume_continues_bitwise_exactly(tmp_path, sample_data, world_size, parallel):
    model = {**SMALL_MODEL, **parallel, "train_iters": STEPS, "checkpoint_factor": STEPS}
    data = sample_data_settings(sample_data)
    straight = write_configs(tmp_path / "straight", model=model, data=data,
                             setup=setup_yaml(tmp_path, "straight"))
    run_workers(train_worker, world_size, tmp_path / "r0", argv=["-d", str(tmp_path / "straight"), *straight])

    interrupted = write_configs(tmp_path / "split", model=model, data=data, setup=setup_yaml(tmp_path, "split"),
                                stop={"exit_interval": STEPS // 2})
    run_workers(train_worker, world_size, tmp_path / "r1", argv=["-d", str(tmp_path / "split"), *interrupted])
    assert (tmp_path / "split/ckpt/latest").read_text() == f"global_step{STEPS // 2}"
    resumed = interrupted[:-1]  # the same run without the stop
    run_workers(train_worker, world_size, tmp_path / "r2", argv=["-d", str(tmp_path / "split"), *resumed])

    expected = train_losses(tmp_path / "straight/run")
    got = train_losses(tmp_path / "split/run")
    assert sorted(got) == list(range(1, STEPS + 1)), "the resumed run must log every iteration once"
    for iteration in range(STEPS // 2 + 1, STEPS + 1):
        assert got[iteration] == expected[iteration], f"iteration {iteration}: {got[iteration]} != {expected[iteration]}"
    assert expected[1] != expected[STEPS]  # it trained


def test_embedded_default_loss_falls_by_30_percent(tmp_path, sample_data):
    """configs/tiny.yml as the README's main job runs it, through deepy.py and DeepSpeed's launcher."""
    files = write_configs(tmp_path, setup={**sample_data_settings(sample_data), **setup_yaml(tmp_path, "tiny"),
                                           "num_workers": 1})
    # One process: both cores, as the quickstart runs it (the 2-process tests keep one thread each).
    result = run_deepy(tmp_path, [str(REPO / "configs/tiny.yml"), *files], env={"OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in metrics(tmp_path / "tiny/run") if "loss" in r]
    assert len(losses) == 20 and losses[-1] <= 0.7 * losses[0], losses


def test_deepy_starts_a_two_stage_pipeline_through_the_deepspeed_launcher(tmp_path, sample_data):
    model = {**SMALL_MODEL, "pipe_parallel_size": 2, "num_gpus": 2, "train_iters": 4, "checkpoint_factor": 4}
    files = write_configs(tmp_path, model=model, data=sample_data_settings(sample_data),
                          setup=setup_yaml(tmp_path, "pp2"))
    result = run_deepy(tmp_path, files)
    assert result.returncode == 0, result.stderr[-3000:]
    step_dir = tmp_path / "pp2/ckpt/global_step4"
    layer_files = sorted(name for name in os.listdir(step_dir) if name.startswith("layer_"))
    assert len(layer_files) == 1 + 2 + 1, layer_files  # embedding, 2 blocks, final norm (tied head: no file)
    assert sorted(train_losses(tmp_path / "pp2/run")) == [1, 2, 3, 4]
