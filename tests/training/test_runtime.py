"""The training runtime end to end on CPU: exact resume (PP=1, PP=2, TP=2), a 2-process pipeline through
deepy.py's launcher, and refusing unusable checkpoints (the embedded default: test_embedded_default.py)."""

import os

import pytest

from dist_helpers import run_workers
from runtime_helpers import (
    SMALL_MODEL,
    run_deepy,
    sample_data_settings,
    setup_yaml,
    train_losses,
    train_worker,
    write_configs,
)

pytestmark = pytest.mark.multiproc
STEPS = 8  # 2N


@pytest.mark.parametrize(
    "world_size,parallel",
    [
        pytest.param(1, {"pipe_parallel_size": 0}, id="pp1"),
        pytest.param(2, {"pipe_parallel_size": 2}, id="pp2"),
        pytest.param(2, {"pipe_parallel_size": 0, "model_parallel_size": 2}, id="tp2"),
    ],
)
def test_resume_continues_bitwise_exactly(tmp_path, sample_data, world_size, parallel):
    model = {**SMALL_MODEL, **parallel, "train_iters": STEPS, "checkpoint_factor": STEPS}
    data = sample_data_settings(sample_data)
    straight = write_configs(tmp_path / "straight", model=model, data=data, setup=setup_yaml(tmp_path, "straight"))
    run_workers(train_worker, world_size, tmp_path / "r0", argv=["-d", str(tmp_path / "straight"), *straight])

    interrupted = write_configs(
        tmp_path / "split",
        model=model,
        data=data,
        setup=setup_yaml(tmp_path, "split"),
        stop={"exit_interval": STEPS // 2},
    )
    run_workers(train_worker, world_size, tmp_path / "r1", argv=["-d", str(tmp_path / "split"), *interrupted])
    assert (tmp_path / "split/ckpt/latest").read_text() == f"global_step{STEPS // 2}"
    resumed = interrupted[:-1]  # the same run without the stop
    run_workers(train_worker, world_size, tmp_path / "r2", argv=["-d", str(tmp_path / "split"), *resumed])

    expected = train_losses(tmp_path / "straight/run")
    got = train_losses(tmp_path / "split/run")
    assert sorted(got) == list(range(1, STEPS + 1)), "the resumed run must log every iteration once"
    for iteration in range(STEPS // 2 + 1, STEPS + 1):
        assert got[iteration] == expected[iteration], (
            f"iteration {iteration}: {got[iteration]} != {expected[iteration]}"
        )
    assert expected[1] != expected[STEPS]  # it trained


def test_deepy_starts_a_two_stage_pipeline(tmp_path, sample_data):
    model = {**SMALL_MODEL, "pipe_parallel_size": 2, "num_gpus": 2, "train_iters": 4, "checkpoint_factor": 4}
    files = write_configs(
        tmp_path, model=model, data=sample_data_settings(sample_data), setup=setup_yaml(tmp_path, "pp2")
    )
    result = run_deepy(tmp_path, files)
    assert result.returncode == 0, result.stderr[-3000:]
    step_dir = tmp_path / "pp2/ckpt/global_step4"
    layer_files = sorted(name for name in os.listdir(step_dir) if name.startswith("layer_"))
    assert len(layer_files) == 1 + 2 + 1, layer_files  # embedding, 2 blocks, final norm (tied head: no file)
    assert sorted(train_losses(tmp_path / "pp2/run")) == [1, 2, 3, 4]
