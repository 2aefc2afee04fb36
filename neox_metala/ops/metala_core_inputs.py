"""The inputs and outputs of MetaLA's core kernels as ops/metala_core_triton.py hands them over: their checks, the
layout the kernels read (each token's channels contiguous, tokens one row stride apart: views of the layer's
projection as they are) and the sizes every launch takes.
"""

from __future__ import annotations

import torch


def block(n: int) -> int:
    """A block width for n columns: a power of 2, at least 16 (tl.dot's smallest)."""
    return max(16, 1 << (n - 1).bit_length())


def doublings(normalizer: float) -> int:
    """log2 of the decay normalizer where it is a power of 2 from 2 to 2^8 (the qk kernel's DOUBLINGS), else 0."""
    return next((m for m in range(1, 9) if normalizer == 2.0**m), 0)


def precision(dtype: torch.dtype) -> str:
    # fp32 inputs are the accuracy reference on the GPU: exact fp32 products, not TF32's 10-bit mantissa
    return "ieee" if dtype == torch.float32 else "tf32"


def check_inputs(q, gate_logits, v):
    if q.dim() != 4 or gate_logits.shape != q.shape or v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"MetaLA core: q, gate_logits must be (B, T, H, K) and v (B, T, H, V) with the same B, T, H; got "
            f"q {tuple(q.shape)}, gate_logits {tuple(gate_logits.shape)}, v {tuple(v.shape)}"
        )
    if q.dtype not in (torch.bfloat16, torch.float16, torch.float32) or {v.dtype, gate_logits.dtype} != {q.dtype}:
        raise ValueError(
            f"MetaLA core: q, gate_logits and v must share one of bf16/fp16/fp32, got {q.dtype}, "
            f"{gate_logits.dtype} and {v.dtype}"
        )


def token_rows(x):
    """(x, its row stride): x as the kernels read it, each token's H·D channels contiguous and its (batch, token)
    rows one stride apart (a view of the (B, T, 3W) projection as it is, without a copy), else a contiguous copy."""
    batch, seq, heads, dim = x.shape
    # a size-1 dimension's stride is arbitrary: at T = 1 the rows are the batch's
    row = x.stride(1) if seq > 1 else x.stride(0) if batch > 1 else heads * dim
    fits = (
        x.stride(-1) == 1
        and (heads == 1 or x.stride(-2) == dim)
        and row >= heads * dim
        and (batch == 1 or seq == 1 or x.stride(0) == seq * row)
    )
    if not fits:
        x, row = x.contiguous(), heads * dim
    return x, row


def sizes(q, v, chunk_size):
    batch, seq, heads, head_k_dim = q.shape
    head_v_dim = v.shape[-1]
    return dict(
        T=seq,
        NT=-(-seq // chunk_size),
        H=heads,
        K=head_k_dim,
        V=head_v_dim,
        BT=chunk_size,
        PRECISION=precision(q.dtype),
    ), batch * heads


def inputs(q, gate_logits, v):
    """The inputs in the kernels' layout (token_rows) and their row strides, as the kernels' keyword arguments."""
    (q, stride_q), (gate_logits, stride_g), (v, stride_v) = (token_rows(t) for t in (q, gate_logits, v))
    return q, gate_logits, v, dict(stride_q=stride_q, stride_g=stride_g, stride_v=stride_v)


def gradient_rows(grads, q, v):
    """(dq, d gate logits, dv) and their row strides: the given ones (views of the projection's gradient, in its
    layout, ops/mixer_op.py) or new contiguous ones (d gate logits in fp32)."""
    if grads is None:
        grads = (q.new_empty(q.shape), q.new_empty(q.shape, dtype=torch.float32), v.new_empty(v.shape))
    rows = [token_rows(t) for t in grads]
    if any(t is not given for (t, _), given in zip(rows, grads)):
        raise ValueError("MetaLA core: the gradients to write into must have each token's channels contiguous")
    return rows


def scan_buffers(q, sizes, batch_heads):
    """A (B, H, N, K, V) buffer in q's dtype for a scan's updates (then its states or state gradients) and the
    chunks' (B·H, N, K) fp32 decays e^G_last."""
    buffer = q.new_empty(batch_heads // sizes["H"], sizes["H"], sizes["NT"], sizes["K"], sizes["V"])
    return buffer, q.new_empty(batch_heads, sizes["NT"], sizes["K"], dtype=torch.float32)
