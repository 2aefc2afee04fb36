"""The BF16 optimizer's global gradient norm and clipping as multi-tensor operations.

DeepSpeed's BF16_Optimizer.step takes the norm one gradient at a time (a norm each, then a stack) and clips one
gradient at a time after reading the clip coefficient on the host: for the 380M model ~220 norm and ~220 multiply
launches per step, and a host sync, while the GPU waits (bench/step_profile.py: ~9 ms of idle per step). Here
the same quantities come from `torch._foreach_norm` and one `torch._foreach_mul_` by min(1, max_norm / (norm +
eps)): multiplying by exactly 1 leaves a gradient unchanged, so no host decision is needed. Same norm (the
per-tensor norms, their squares summed, the same model-parallel all-reduce; on the CPU bit-identical, on a GPU
the multi-tensor norm may round the last bit differently), same clipped gradients.
"""

from __future__ import annotations

import contextlib

import torch
from deepspeed import comm as dist
from deepspeed.runtime import bf16_optimizer
from deepspeed.runtime.utils import mask_nan_or_inf_with_val_inplace

_deepspeed_norm = bf16_optimizer.get_global_norm_of_tensors
_deepspeed_clip = bf16_optimizer.clip_tensors_by_global_norm


def use_multi_tensor_norm(optimizer) -> None:
    """Make `optimizer` (DeepSpeed's BF16_Optimizer; anything else is left alone) take its step's gradient norm
    and clipping as multi-tensor operations."""
    if not isinstance(optimizer, bf16_optimizer.BF16_Optimizer) or optimizer.has_moe_layers:
        return
    deepspeed_step = optimizer.step

    def step(closure=None):
        with _in_step():
            return deepspeed_step(closure)

    optimizer.step = step


@contextlib.contextmanager
def _in_step():
    """The step reads both functions from its module: swapped for the step's duration only."""
    bf16_optimizer.get_global_norm_of_tensors = global_norm
    bf16_optimizer.clip_tensors_by_global_norm = clip_by_global_norm
    try:
        yield
    finally:
        bf16_optimizer.get_global_norm_of_tensors = _deepspeed_norm
        bf16_optimizer.clip_tensors_by_global_norm = _deepspeed_clip


def global_norm(input_tensors, norm_type=2, mpu=None, moe_ep_group=None):
    """deepspeed.runtime.utils.get_global_norm_of_tensors for the 2-norm without expert groups."""
    if float(norm_type) != 2.0 or moe_ep_group is not None or not input_tensors:
        return _deepspeed_norm(input_tensors, norm_type=norm_type, mpu=mpu, moe_ep_group=moe_ep_group)
    # (the optimizer's fp32 gradients need neither detach nor a cast: no per-tensor dispatch before the norm)
    norms = torch._foreach_norm([t if t.dtype == torch.float32 else t.float() for t in input_tensors], 2.0)
    total = torch.stack(norms).pow(2.0).sum()
    if mpu is not None:
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=mpu.get_model_parallel_group())
    total = total.pow(0.5)
    mask_nan_or_inf_with_val_inplace(total, device=total.device)
    return total


def clip_by_global_norm(input_tensors, max_norm=1.0, global_norm=None, mpu=None, eps=1e-6):
    """deepspeed.runtime.utils.clip_tensors_by_global_norm with its norm given (as the BF16 optimizer calls it)."""
    if global_norm is None or not torch.is_tensor(global_norm) or not input_tensors:
        return _deepspeed_clip(input_tensors, max_norm=max_norm, global_norm=global_norm, mpu=mpu, eps=eps)
    coefficient = (max_norm / (global_norm + eps)).clamp(max=1.0)
    torch._foreach_mul_(list(input_tensors), coefficient)
    return global_norm
