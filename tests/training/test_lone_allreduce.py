"""engine.skip_lone_gradient_allreduce: with one data-parallel rank no gradient all-reduce runs, so the optimizer
gets the fp32 gradients as the micro batches summed them; DeepSpeed's all-reduce over the one rank had rounded them
to its bf16 communication dtype and copied them back. With two data-parallel ranks the all-reduce stays. Real
trainer on the pipeline engine (every shipped config's), real BF16 optimizer, 2 micro batches per step, no clipping
(which would scale the gradients)."""

import pytest
import torch

from dist_helpers import run_workers
from runtime_helpers import job_configs

pytestmark = pytest.mark.multiproc


def gradients_at_the_step(rank, world_size, config_dir, files):
    from neox_metala.launch.train_args import parse_train_args
    from neox_metala.training.trainer import Trainer

    trainer = Trainer(parse_train_args(["-d", str(config_dir), *files]))
    try:
        engine, adam = trainer.engine, trainer.engine.optimizer.optimizer
        seen = []
        step = adam.step

        def recording_step(*args, **kwargs):
            seen.extend(p.grad.detach().clone() for group in adam.param_groups for p in group["params"])
            return step(*args, **kwargs)

        adam.step = recording_step
        assert trainer.train() == 0
        grads = torch.cat([g.flatten() for g in seen])
        # gradients a bf16 round trip leaves alone: all of them after a bf16 all-reduce, few after an fp32 sum
        bf16_exact = (grads.bfloat16().float() == grads).float().mean().item()
        return engine.pipeline_enable_backward_allreduce, bf16_exact
    finally:
        trainer.train_stream.close()
        trainer.metrics.close()


@pytest.mark.parametrize("ranks", [1, 2], ids=["one-rank", "data-parallel-2"])
def test_gradients_reach_the_optimizer_unrounded_on_one_rank(tmp_path, sample_data, ranks):
    config_dir, files = job_configs(
        tmp_path, "job", sample_data, precision="bfloat16", train_iters=2, checkpoint_factor=None, eval_iters=0,
        gradient_clipping=0.0, pipe_parallel_size=1,  # the pipeline engine, as every shipped config
    )  # fmt: skip
    for allreduce, bf16_exact in run_workers(
        gradients_at_the_step, ranks, tmp_path / "result", config_dir=config_dir, files=files
    ):
        if ranks == 1:
            assert allreduce is False
            assert bf16_exact < 0.5, bf16_exact  # fp32 sums of two bf16 micro batches: mostly not bf16 values
        else:
            assert allreduce is True
            assert bf16_exact == 1.0, bf16_exact  # DeepSpeed's bf16 all-reduce, averaged by 2: bf16 values
