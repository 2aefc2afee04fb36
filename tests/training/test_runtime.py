"""The training runtime end to end on CPU: exact resume (PP=1, PP=2, TP=2). A 2-stage pipeline through deepy.py's
launcher: test_exit.py; the embedded default: test_embedded_default.py."""

import pytest

from dist_helpers import run_workers
from runtime_helpers import (
    SMALL_MODEL,
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
