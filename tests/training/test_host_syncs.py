"""A bf16 training step waits for the device only where a decision needs a device value: on a GPU every such wait
drains the GPU's queue and leaves it idle while the host catches up. Counted here on the real engines (both
DeepSpeed engines, 4 micro batches per step, past DeepSpeed's timers' start at step 2): no device-wide
synchronization (DeepSpeed's throughput timer made two per micro batch on the plain engine, 8 per step here; on
the pipeline engine its count never starts) and one read of a device value per step, the BF16 optimizer's check
for a non-finite gradient norm, which decides whether the step is skipped (its clipping read the clip coefficient
too until training/grad_norm.py). Reads of values that a GPU run keeps on the host are left out: the CPU AdamW's
step counters (torch's fused AdamW on a GPU keeps them on the device)."""

import collections
import traceback

import pytest

from dist_helpers import run_workers
from runtime_helpers import job_configs

pytestmark = pytest.mark.multiproc
STEPS = 4


def count_waits(rank, world_size, jobs):
    import torch
    from deepspeed.accelerator import get_accelerator
    from torch.utils._python_dispatch import TorchDispatchMode

    from neox_metala.launch.train_args import parse_train_args
    from neox_metala.training.trainer import Trainer

    reads, synchronizations = collections.Counter(), []

    class ReadsOfDeviceValues(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                stack = traceback.extract_stack()[:-1]  # without this frame
                caller = [f for f in stack if "site-packages/torch/" not in f.filename][-1]
                if not any("torch/optim" in f.filename for f in stack):
                    reads[f"{caller.filename.rsplit('/', 1)[-1]}:{caller.name}"] += 1
            return func(*args, **(kwargs or {}))

    accelerator = get_accelerator()
    synchronize = accelerator.synchronize
    accelerator.synchronize = lambda *args, **kwargs: (synchronizations.append(1), synchronize(*args, **kwargs))[1]
    config_dir, files = jobs["run"]
    trainer = Trainer(parse_train_args(["-d", str(config_dir), *files]))
    try:
        for _ in range(3):  # past DeepSpeed's timers' start_step (2) and the first-micro-batch checks
            trainer.train_step()
        synchronizations.clear()
        with ReadsOfDeviceValues():
            for _ in range(STEPS):
                trainer.train_step()
    finally:
        accelerator.synchronize = synchronize
        trainer.train_stream.close()
        trainer.metrics.close()
    return dict(reads), len(synchronizations)


@pytest.mark.parametrize("pipe_parallel_size", [1, 0], ids=["pipeline-engine", "plain-engine"])
def test_a_bf16_step_waits_for_the_device_once(tmp_path, sample_data, pipe_parallel_size):
    settings = dict(precision="bfloat16", pipe_parallel_size=pipe_parallel_size, train_iters=10,
                    gradient_accumulation_steps=4, checkpoint_factor=None, eval_iters=0, log_interval=100)  # fmt: skip
    jobs = {"run": job_configs(tmp_path, "run", sample_data, **settings)}
    ((reads, synchronizations),) = run_workers(count_waits, 1, tmp_path / "result", jobs=jobs)
    assert synchronizations == 0
    assert reads == {"utils.py:is_invalid_grad_norm": STEPS}, reads
