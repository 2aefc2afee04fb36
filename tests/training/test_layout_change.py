"""Continuing a run in another parallel layout, against one uninterrupted TP=1 run (the reference).

The reference trains 2N steps on one process and saves at N. Its step-N checkpoint is resumed as TP=2, PP=2 and
DP=2 (one 2-process launch, one run after the other), as TP=2 x PP=2 (4 processes), as a one-stage pipeline
(pipe_parallel_size 1), and the TP=2 run's conversion back as TP=1 (one process): the losses of steps N+1..2N
must be the reference's, and each conversion's optimizer state the reference's, gathered (max diff 0). Then the
NeoX loading keys (finetune, no_load_optim, no_load_rng) and the offline converter: the work of its processes,
run inside these launches, writes the automatic path's files, and converting there and back is bit-identical.
Dropout is off: a pipeline stage draws its own dropout masks, so with dropout no other layout could match TP=1."""

import os
import shutil

import numpy as np
import pytest
import torch

from neox_metala.checkpoint.convert import plan

from dist_helpers import run_workers
from runtime_helpers import SMALL_MODEL, sample_data_settings, setup_yaml, train_losses, write_configs

pytestmark = pytest.mark.multiproc
N = 4
MODEL = {
    **SMALL_MODEL,
    "train_iters": 2 * N,
    "checkpoint_factor": N,
    "hidden_dropout": 0.0,
    "eval_iters": 0,
    "train_batch_size": 4,
}
del MODEL["gradient_accumulation_steps"]  # it follows from the batch size and the data-parallel size
LAYOUTS = {
    "tp2": {"model_parallel_size": 2},
    "pp2": {"pipe_parallel_size": 2},
    "dp2": {},
    "tp2pp2": {"model_parallel_size": 2, "pipe_parallel_size": 2},
    "tp1": {},
    "pp1": {"pipe_parallel_size": 1},
}
CONVERTED = {
    "tp2": "tp2-pp0-dp1",
    "pp2": "tp1-pp2-dp1",
    "dp2": "tp1-pp0-dp2",
    "tp2pp2": "tp2-pp2-dp1",
    "tp1": "tp1-pp0-dp1",
    "pp1": "tp1-pp1-dp1",
}
LOADING_KEYS = ("finetune", "no_load_optim", "no_load_rng")


def sequential_runs(rank, world_size, runs):
    """Several jobs one after the other in this process group: ("train", argv) trains, ("load", argv) only builds
    the trainer (loading its checkpoint) and returns what it loaded, ("convert", plan) is the offline converter's
    work on one rank."""
    from neox_metala.checkpoint.convert import convert_rank
    from neox_metala.launch.train_args import parse_train_args
    from neox_metala.training.trainer import Trainer

    results = []
    for kind, job in runs:
        if kind == "convert":
            results.append(convert_rank(job))
            continue
        trainer = Trainer(parse_train_args(job))
        try:
            results.append(trainer.train() if kind == "train" else _state_after_load(trainer))
        finally:
            trainer.train_stream.close()
            trainer.metrics.close()
    return results


def _state_after_load(trainer) -> dict:
    optimizer = trainer.engine.optimizer.optimizer  # ZeRO-1's torch AdamW over the flat fp32 partitions
    states = [optimizer.state.get(group["params"][0], {}) for group in optimizer.param_groups]
    return {
        "iteration": trainer.state.iteration,
        "consumed": trainer.state.consumed_train_samples,
        "lr_iteration": trainer.engine.lr_scheduler.iteration,
        "adam_steps": [float(state["step"]) for state in states if "step" in state],
        "exp_avg_sq_sum": sum(float(state["exp_avg_sq"].sum()) for state in states if "exp_avg_sq" in state),
        "torch_rng": torch.get_rng_state(),
        "weights": {name: p.detach().clone() for name, p in trainer.engine.module.named_parameters()},
    }


def _config(tmp_path, data, name, load, **extra):
    files = write_configs(
        tmp_path / name,
        model={**MODEL, **LAYOUTS.get(name, {}), **extra},
        data=data,
        setup={**setup_yaml(tmp_path, name), "load": load},
    )
    return ["-d", str(tmp_path / name), *files]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample_data):
    """Every launch of this file, once: the reference, the resumed runs and the loading-key runs."""
    tmp = tmp_path_factory.mktemp("layouts")
    data = sample_data_settings(sample_data)
    reference = _config(tmp, data, "reference", str(tmp / "reference/ckpt"))
    run_workers(sequential_runs, 1, tmp / "r_reference", runs=[("train", reference)])
    source = tmp / "source"  # the reference's step N alone, as a run interrupted there would leave it
    shutil.copytree(tmp / f"reference/ckpt/global_step{N}", source / f"global_step{N}")
    (source / "latest").write_text(f"global_step{N}")
    resumes = [("train", _config(tmp, data, name, str(source))) for name in ("tp2", "pp2", "dp2")]
    offline = ("convert", plan(str(source), str(tmp / "offline_tp2"), tp=2, pp=0, dp=1))  # each CLI process's work
    run_workers(sequential_runs, 2, tmp / "r2", runs=[*resumes, offline])
    run_workers(sequential_runs, 4, tmp / "r4", runs=[("train", _config(tmp, data, "tp2pp2", str(source)))])
    tp2_conversion = str(tmp / "tp2/ckpt/layouts" / CONVERTED["tp2"])
    loads = [("train", _config(tmp, data, "tp1", tp2_conversion)), ("train", _config(tmp, data, "pp1", str(source)))]
    # Another seed: random streams that start from it differ from the saved ones (no dropout draws nothing).
    loads += [
        ("load", _config(tmp, data, key, tp2_conversion if key == "finetune" else str(source), seed=99, **{key: True}))
        for key in LOADING_KEYS
    ]
    back = ("convert", plan(str(tmp / "offline_tp2"), str(tmp / "offline_back"), tp=1, pp=0, dp=1))
    loaded = run_workers(sequential_runs, 1, tmp / "r1", runs=[*loads, back])[0][2:-1]
    return tmp, dict(zip(LOADING_KEYS, loaded))


@pytest.mark.parametrize("name", list(CONVERTED))
def test_resumed_layout_continues_the_uninterrupted_run(runs, name):
    tmp, _ = runs
    expected, got = train_losses(tmp / "reference/run"), train_losses(tmp / name / "run")
    assert sorted(got) == list(range(N + 1, 2 * N + 1)), f"{name} must log iterations {N + 1}..{2 * N} once"
    for iteration in range(N + 1, 2 * N + 1):
        assert abs(got[iteration] - expected[iteration]) <= 1e-5 * abs(expected[iteration]), (
            f"{name} iteration {iteration}: {got[iteration]} != {expected[iteration]}"
        )
    assert expected[N + 1] != expected[2 * N]  # it trained


def _assert_same_state(converted_dir, original_dir):
    from neox_metala.training.neutral_checkpoint import MASTER, MOMENTS, NeutralCheckpoint

    converted, original = NeutralCheckpoint(str(converted_dir)), NeutralCheckpoint(str(original_dir))
    assert set(converted.shapes) == set(original.shapes)
    for name in original.shapes:
        assert torch.equal(converted.weight(name), original.weight(name)), name
        for key in (MASTER, *MOMENTS):
            difference = (converted.optimizer_tensor(name, key) - original.optimizer_tensor(name, key)).abs().max()
            assert difference == 0, f"{name} {key}: max difference {difference}"
    assert torch.equal(converted.optimizer_step(), original.optimizer_step())
    for key in ("lr_scheduler", "train_state", "global_steps", "global_samples", "skipped_steps"):
        assert converted.engine_state[key] == original.engine_state[key], key


@pytest.mark.parametrize("name", list(CONVERTED))
def test_conversion_keeps_the_optimizer_state(runs, single_rank, name):
    tmp, _ = runs
    step = f"global_step{N}"
    _assert_same_state(tmp / name / "ckpt/layouts" / CONVERTED[name] / step, tmp / "source" / step)


def test_loading_keys_do_what_gpt_neox_does(runs, single_rank):
    tmp, loaded = runs
    from neox_metala.training.neutral_checkpoint import NeutralCheckpoint

    source = NeutralCheckpoint(str(tmp / f"source/global_step{N}"))
    saved_rng = torch.load(source.rng_state_path(0), weights_only=False)["torch"]
    finetune, no_optim, no_rng = loaded["finetune"], loaded["no_load_optim"], loaded["no_load_rng"]
    # finetune (here from the TP=2 conversion: weights only, through another layout): a new run on those weights
    assert (finetune["iteration"], finetune["consumed"], finetune["lr_iteration"]) == (0, 0, 0)
    assert finetune["adam_steps"] == [] and not torch.equal(finetune["torch_rng"], saved_rng)
    for name, weight in finetune["weights"].items():
        assert torch.equal(weight, source.weight(name)), name
    # no_load_optim: the run continues (iteration, data, RNG) with a fresh optimizer and LR schedule
    assert (no_optim["iteration"], no_optim["consumed"], no_optim["lr_iteration"]) == (N, 4 * N, 0)
    assert no_optim["adam_steps"] == [] and torch.equal(no_optim["torch_rng"], saved_rng)
    # no_load_rng: everything but the random streams
    assert (no_rng["iteration"], no_rng["consumed"], no_rng["lr_iteration"]) == (N, 4 * N, N)
    assert no_rng["adam_steps"] == [float(N)] * 2 and no_rng["exp_avg_sq_sum"] > 0
    assert not torch.equal(no_rng["torch_rng"], saved_rng)


def test_a_checkpoint_without_zero_partitions_names_the_fix(runs, single_rank, tmp_path):
    from neox_metala.training.checkpoint_files import CheckpointFormatError
    from neox_metala.training.neutral_checkpoint import NeutralCheckpoint

    tmp, _ = runs
    step_dir = tmp_path / f"global_step{N}"  # as ZeRO stage 0 saves: no zero_pp_rank_* files
    shutil.copytree(
        tmp / f"source/global_step{N}", step_dir, ignore=shutil.ignore_patterns("zero_pp_rank_*_optim_states.pt")
    )
    with pytest.raises(CheckpointFormatError, match="zero_optimization stage 1 or 2.*finetune or no_load_optim"):
        NeutralCheckpoint(str(step_dir)).optimizer_step()


def _tensors_differ(a, b, path="") -> list[str]:
    """Paths where two loaded checkpoint files differ (tensors: dtype, shape and every bit)."""
    if torch.is_tensor(a):
        same = torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        return [] if same else [path]
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            return [f"{path} (keys)"]
        return [d for key in a for d in _tensors_differ(a[key], b[key], f"{path}/{key}")]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return [f"{path} (length)"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _tensors_differ(x, y, f"{path}[{i}]")]
    if isinstance(a, np.ndarray):  # numpy's RNG state
        return [] if np.array_equal(a, b) else [path]
    if hasattr(a, "__dict__") and type(a).__eq__ is object.__eq__:  # DeepSpeed's loss scaler: compare its fields
        return _tensors_differ(vars(a), vars(b), path)
    return [] if a == b else [path]


def _assert_same_files(dir_a, dir_b):
    names = sorted(name for name in os.listdir(dir_a) if name.endswith(".pt"))
    assert names == sorted(name for name in os.listdir(dir_b) if name.endswith(".pt"))
    for name in names:
        a, b = (torch.load(os.path.join(d, name), weights_only=False) for d in (dir_a, dir_b))
        assert not _tensors_differ(a, b), f"{name}: {_tensors_differ(a, b)[:5]}"


def test_offline_converter_writes_the_automatic_conversion_and_back(runs):
    tmp, _ = runs
    step = f"global_step{N}"
    _assert_same_files(tmp / "offline_tp2" / step, tmp / "tp2/ckpt/layouts" / CONVERTED["tp2"] / step)
    _assert_same_files(tmp / "offline_back" / step, tmp / "source" / step)


def test_offline_converter_command_line(runs):
    from neox_metala.checkpoint.__main__ import main

    tmp, _ = runs
    with pytest.raises(SystemExit, match="is the --load folder"):
        main(["convert", "--load", str(tmp / "source"), "--save", str(tmp / "source"), "--model-parallel-size", "2"])
    with pytest.raises(SystemExit, match="holds no checkpoint"):
        main(["convert", "--load", str(tmp / "empty"), "--save", str(tmp / "out"), "--model-parallel-size", "2"])
