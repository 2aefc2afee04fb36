"""The output head's gradient reaches the optimizer in bf16, tied or untied, on every engine and under pipeline
parallelism: step 1's gradient norm of each bf16 run equals that of the same model trained in fp32 on the plain
engine (another optimizer, DeepSpeed's ZeRO-1 instead of its BF16 optimizer), within bf16 rounding; and no
parameter's gradient is all zeros when the BF16 optimizer steps.

Found on the H200 (session 10): DeepSpeed zeroes the bf16 gradients at the first output gradient of a backward, and
the fused loss's head handed its weight parameter out as a model output, whose gradient autograd accumulates
first. An untied head never trained in bf16 (its gradient was 0: step-1 grad norm 0.595 instead of 0.824 here),
and with two pipeline stages the tied embedding kept only its input side's gradient (0.600 instead of 0.833)."""

import json

import pytest
import torch

from dist_helpers import run_workers
from runtime_helpers import job_configs

pytestmark = pytest.mark.multiproc
BOUND = 1e-2  # bf16 forward and backward against fp32: ~1e-4 here; a lost head gradient: ~0.3
SETTINGS = dict(
    train_iters=1,
    checkpoint_factor=None,
    eval_iters=0,
    hidden_dropout=0.0,
    num_layers=4,
    attention_config=[[["metala"], 4]],
)


def train(rank, world_size, jobs, zeroed=None):
    """Each job trained; -> ({config dir: names of all-zero fp32 gradients at a step}, engine warnings). `zeroed`:
    the name of a parameter whose gradient a hook replaces by zeros (a lost gradient, made on purpose)."""
    import logging

    from neox_metala.launch.train_args import parse_train_args
    from neox_metala.training.trainer import Trainer

    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("neox_metala.training.engine").addHandler(handler)
    zero_gradients = {}
    for config_dir, files in jobs:
        trainer = Trainer(parse_train_args(["-d", str(config_dir), *files]))
        record_zero_gradients(trainer.engine, zero_gradients.setdefault(str(config_dir), []))
        for name, param in trainer.engine.module.named_parameters():
            if name == zeroed:
                param.register_hook(torch.zeros_like)
        try:
            assert trainer.train() == 0
        finally:
            trainer.train_stream.close()
            trainer.metrics.close()
    return zero_gradients, [w for w in warnings if "got no gradient" in w]


def record_zero_gradients(engine, into: list) -> None:
    """With the BF16 optimizer: at each step, append the names of the parameters whose fp32 gradient is all zeros."""
    optimizer = engine.optimizer
    if not hasattr(optimizer, "fp32_groups_gradients"):
        return
    names = {id(p): name for name, p in engine.module.named_parameters()}
    step = optimizer.step

    def checked_step(*args, **kwargs):
        groups = zip(optimizer.bf16_groups, optimizer.fp32_groups_gradients)
        into.extend(names[id(lp)] for lps, grads in groups for lp, grad in zip(lps, grads) if not grad.any())
        return step(*args, **kwargs)

    optimizer.step = checked_step


def first_grad_norm(tmp_path, name) -> float:
    records = [json.loads(line) for line in (tmp_path / name / "run" / "metrics.jsonl").read_text().splitlines()]
    return next(r["grad_norm"] for r in records if r.get("iteration") == 1 and "grad_norm" in r)


def test_head_gradient_reaches_the_optimizer_in_bf16(tmp_path, sample_data):
    runs = {  # name: (precision, pipe_parallel_size, tied, ranks); two ranks without PP: TP=2
        "fp32-tied": ("fp32", 0, True, 1),
        "fp32-untied": ("fp32", 0, False, 1),
        "bf16-untied-plain": ("bfloat16", 0, False, 1),
        "bf16-untied-pipeline": ("bfloat16", 1, False, 1),
        "bf16-tied-pp2": ("bfloat16", 2, True, 2),
        "bf16-untied-tp2": ("bfloat16", 1, False, 2),
    }
    jobs = {1: [], 2: []}
    for name, (precision, pipe, tied, ranks) in runs.items():
        settings = dict(SETTINGS, precision=precision, pipe_parallel_size=pipe, no_weight_tying=not tied)
        if ranks == 2 and pipe < 2:
            settings["model_parallel_size"] = 2
        jobs[ranks].append(job_configs(tmp_path, name, sample_data, **settings))
    for ranks, ranked_jobs in jobs.items():
        for zero_gradients, warnings in run_workers(train, ranks, tmp_path / f"result{ranks}", jobs=ranked_jobs):
            assert not any(zero_gradients.values()), zero_gradients
            assert not warnings, warnings
    norms = {name: first_grad_norm(tmp_path, name) for name in runs}
    for name, (_, _, tied, _) in runs.items():
        reference = norms["fp32-tied" if tied else "fp32-untied"]
        assert abs(norms[name] - reference) <= BOUND * reference, (name, norms)


def test_a_parameter_without_gradient_is_named_in_a_warning(tmp_path, sample_data):
    """The trainer's guard (engine.warn_gradientless) against what the untied head suffered: a parameter whose
    gradient is all zeros in the first micro batch is named in a warning (here made so by a hook)."""
    job = job_configs(tmp_path, "zeroed", sample_data, **dict(SETTINGS, precision="bfloat16", pipe_parallel_size=1))
    [(_, warnings)] = run_workers(train, 1, tmp_path / "result", jobs=[job], zeroed="5.norm.scale")
    assert len(warnings) == 1 and warnings[0].endswith(": 5.norm.scale"), warnings
