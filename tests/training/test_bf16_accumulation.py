"""bf16 training's fp32 gradient accumulation (engine.accumulate_in_one_call) against DeepSpeed's own per-parameter
loop, on a real BF16 optimizer built by our engine: the fp32 sums must be bit-identical after several micro
batches, with and without clearing the bf16 gradients, for a pipeline engine (every shipped config) and a plain one."""

import pytest
import torch

from dist_helpers import run_workers
from runtime_helpers import job_configs

pytestmark = pytest.mark.multiproc


def compare_with_deepspeed(rank, world_size, config_dir, files):
    from deepspeed.runtime.bf16_optimizer import BF16_Optimizer

    from neox_metala.launch.train_args import parse_train_args
    from neox_metala.training.trainer import Trainer

    trainer = Trainer(parse_train_args(["-d", str(config_dir), *files]))
    try:
        optimizer = trainer.engine.optimizer
        assert type(optimizer) is BF16_Optimizer, type(optimizer)
        assert "update_hp_grads" in vars(optimizer), "the one-call accumulation was not installed"
        params = [p for group in optimizer.bf16_groups for p in group]
        hp_grads = [g for group in optimizer.fp32_groups_gradients for g in group]
        start = [g.clone() for g in hp_grads]
        generator = torch.Generator().manual_seed(0)
        micro_batches = [
            [(torch.randn(p.shape, generator=generator) * 10.0 ** torch.randint(-6, 3, ())).bfloat16() for p in params]
            for _ in range(3)
        ]
        sums = {}
        for name, update in (
            ("ours", optimizer.update_hp_grads),
            ("deepspeed", lambda **kw: BF16_Optimizer.update_hp_grads(optimizer, **kw)),
        ):
            for hp, value in zip(hp_grads, start):
                hp.copy_(value)
            for index, grads in enumerate(micro_batches):
                for p, g in zip(params, grads):
                    if p.grad is None or index == 0:
                        p.grad = g.clone()
                    else:
                        p.grad.add_(g)  # what AccumulateGrad does when the bf16 gradient is kept
                update(clear_lp_grads=index == 1)
            sums[name] = [hp.clone() for hp in hp_grads]
            for p in params:
                p.grad = None
        return [torch.equal(a, b) for a, b in zip(sums["ours"], sums["deepspeed"])], len(params)
    finally:
        trainer.train_stream.close()
        trainer.metrics.close()


@pytest.mark.parametrize("pipe_parallel_size", [1, 0], ids=["pipeline-engine", "plain-engine"])
def test_one_call_accumulation_equals_deepspeeds_loop(tmp_path, sample_data, pipe_parallel_size):
    config_dir, files = job_configs(
        tmp_path, "bf16", sample_data, precision="bfloat16", pipe_parallel_size=pipe_parallel_size, train_iters=1
    )
    equal, count = run_workers(compare_with_deepspeed, 1, tmp_path / "result", config_dir=config_dir, files=files)[0]
    assert count > 5 and all(equal), equal
