"""bf16 training's fp32 gradient accumulation (engine.accumulate_in_one_call) against DeepSpeed's own per-parameter
path: the same bf16 runs (real trainer, real BF16 optimizer, 2 micro batches per step) with and without it must end
in bit-identical weights and fp32 optimizer state, for the pipeline engine (every shipped config) and the plain
engine, on one rank, with data parallelism (ZeRO-1 partitions, reduced gradients) and with two pipeline stages (the
tied embedding's gradient reduced across them from the fp32 buffers); with it, no bf16 gradient is left after a
step. Each step's first micro batch writes over the last step's fp32 gradients instead of adding into zeros (the
lazy clear): any stale value would change the weights of steps 2 and 3. "ours" also takes the step's gradient norm
and clipping as multi-tensor operations (training/grad_norm.py), which on the CPU must be bit-identical too. All
compared bit for bit (a zero's sign included)."""

import pytest
import torch

from dist_helpers import run_workers
from runtime_helpers import bits, job_configs

pytestmark = pytest.mark.multiproc


def train_both_ways(rank, world_size, jobs):
    from deepspeed.runtime.bf16_optimizer import BF16_Optimizer

    from neox_metala.launch.train_args import parse_train_args
    from neox_metala.training import engine as engine_module
    from neox_metala.training import grad_norm
    from neox_metala.training.trainer import Trainer

    results = {}
    ours, ours_norm = engine_module.accumulate_in_one_call, grad_norm.use_multi_tensor_norm
    for name, (config_dir, files) in jobs.items():
        engine_module.accumulate_in_one_call = ours if name == "ours" else (lambda optimizer, module: None)
        grad_norm.use_multi_tensor_norm = ours_norm if name == "ours" else (lambda optimizer: None)
        trainer = Trainer(parse_train_args(["-d", str(config_dir), *files]))
        try:
            optimizer = trainer.engine.optimizer
            assert type(optimizer) is BF16_Optimizer, type(optimizer)
            assert ("update_hp_grads" in vars(optimizer)) == (name == "ours")
            assert ("clear_hp_grads" in vars(optimizer)) == (name == "ours")  # the lazy clear: no zero-fill
            assert ("step" in vars(optimizer)) == (name == "ours")  # grad_norm's multi-tensor norm and clipping
            assert trainer.resumed_from is None and trainer.train() == 0 and trainer.state.iteration == 3
            params = [p for group in optimizer.bf16_groups for p in group]
            results[name] = {
                "weights": [p.detach().clone() for p in params],
                "master": [p.detach().clone() for p in optimizer.fp32_groups_flat_partition],
                "bf16_grads_left": sum(p.grad is not None for p in params),
            }
        finally:
            trainer.train_stream.close()
            trainer.metrics.close()
    engine_module.accumulate_in_one_call = ours
    same = {
        part: all(torch.equal(bits(a), bits(b)) for a, b in zip(results["ours"][part], results["deepspeed"][part]))
        for part in ("weights", "master")
    }
    return same, results["ours"]["bf16_grads_left"], len(results["ours"]["weights"])


@pytest.mark.parametrize(
    "pipe_parallel_size, ranks",
    [(1, 1), (0, 1), (1, 2), (2, 2)],
    ids=["pipeline-engine", "plain-engine", "data-parallel-2", "pipeline-parallel-2"],
)
def test_one_call_accumulation_trains_bit_identically(tmp_path, sample_data, pipe_parallel_size, ranks):
    settings = dict(
        precision="bfloat16",
        pipe_parallel_size=pipe_parallel_size,
        train_iters=3,
        checkpoint_factor=None,
        eval_iters=0,
        hidden_dropout=0.0,  # the two runs draw the same masks anyway; no reason to depend on it
        gradient_clipping=0.05,  # below every step's norm: the clipping (grad_norm.py's multi-tensor form) acts
    )
    jobs = {name: job_configs(tmp_path, name, sample_data, **settings) for name in ("deepspeed", "ours")}
    for same, grads_left, count in run_workers(train_both_ways, ranks, tmp_path / "result", jobs=jobs):
        assert count > 5
        assert same == {"weights": True, "master": True}, same
        assert grads_left == 0
