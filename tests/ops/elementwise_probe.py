"""A Triton kernel that applies the core kernels' log1p (ops/metala_core_kernels.py's `_log1p`) to a 1-D fp32
tensor, so that a test holds it to its documented accuracy directly: the core's norm-relative bounds are not moved
by a few 1e-7 of error in one helper. Imports triton: only the tests that run the kernels import it, after their
skip marks."""

import triton
import triton.language as tl

from neox_metala.ops.metala_core_kernels import _log1p


@triton.jit
def _log1p_kernel(y, out, N, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    value = tl.load(y + offsets, mask=offsets < N, other=0.0)
    tl.store(out + offsets, _log1p(value), mask=offsets < N)


def log1p(y):
    """`_log1p` of every element of y (1-D, fp32, on the kernels' device)."""
    out = y.new_empty(y.shape)
    _log1p_kernel[(triton.cdiv(y.numel(), 1024),)](y, out, y.numel(), 1024)
    return out
