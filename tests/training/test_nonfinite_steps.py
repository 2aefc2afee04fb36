"""Non-finite steps end to end on CPU (the trainer's main, train.py's, in a fresh process from the test fork server),
through the NaN test hook: one poisoned step is skipped (weights unchanged, counted), consecutive ones stop the run
with exit code 3 and a message; ZeRO stage 0, which cannot skip, stops at the first one."""

import math

import pytest
import torch

from hooked_train import NAN_TEST_HOOK
from runtime_helpers import (
    assert_bitwise_equal,
    complete_steps,
    job_configs,
    metrics,
    model_weights,
    run_main,
)

pytestmark = pytest.mark.multiproc


def test_a_nan_step_is_skipped_and_consecutive_nans_stop_the_run(tmp_path, sample_data):
    """Iteration 3 poisoned: skipped (step 3's weights are step 2's), then training goes on; 6, 7, 8 poisoned with
    max_consecutive_nonfinite 3: exit code 3 at iteration 8 with a message that says what to do."""
    config_dir, files = job_configs(
        tmp_path,
        "job",
        sample_data,
        train_iters=12,
        checkpoint_factor=1,
        keep_last_n_checkpoints=None,
        max_consecutive_nonfinite=3,
        eval_iters=0,
    )
    run = run_main(config_dir, files, tmp_path / "job.log", {NAN_TEST_HOOK: "3,6,7,8"})
    assert run.returncode == 3, run.output[-3000:]
    assert "stopping: 3 consecutive steps (up to iteration 8) had a non-finite loss or gradient norm" in run.output
    assert "resume from the last checkpoint in" in run.output

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
    config_dir, files = job_configs(
        tmp_path,
        "job",
        sample_data,
        train_iters=6,
        checkpoint_factor=1,
        keep_last_n_checkpoints=None,
        zero_optimization={"stage": 0},
        eval_iters=0,
    )
    run = run_main(config_dir, files, tmp_path / "job.log", {NAN_TEST_HOOK: "3"})
    assert run.returncode == 3, run.output[-3000:]
    assert "iteration 3 had a non-finite loss and its update was applied (zero_optimization stage 0" in run.output
    assert complete_steps(tmp_path / "job/ckpt") == [1, 2]
