"""MetaLA's core forward + backward alone against the bytes it must move (bench/layer.py's "core f+b" lines), two
ways:
- the core op (ops/metala_core_op.py) as a layer without self-augmentation calls it: states kept as in training, its
  inputs views of one projection, autograd's gradients;
- the core as the default block calls it (ops/mixer_op.py): self-augmentation's a written by the forward, its terms of
  dq and d logits formed by the backward's qk kernel (the Gluon kernel on an H200), the gradients written into views
  of the projection's gradient, dv added to what the epilogue's backward left there.
Bytes over a device copy bandwidth that bench/layer.py measures in the same run. Also runs on a CPU through Triton's
interpreter at small shapes (`steps`), where only the calls are checked.
"""

from __future__ import annotations

import statistics

import torch

HEAD_K_DIM = 64  # MetaLA's per-head q / key width, V twice that (bench/layer.py's)
NORMALIZER = 16.0
INPUT_SETS = 3


def _parts(projected, heads):
    """(q, gate logits, v) (B, T, H, D): head-split views of a (B, T, 3W) projection [q | logits | v | gate] (or of
    its gradient)."""
    width = projected.shape[-1] // 3
    q, logits, v, _ = projected.split([width // 2, width // 2, width, width], dim=-1)
    return [t.unflatten(-1, (heads, -1)) for t in (q, logits, v)]


def _projection(batch, seq, heads, device, requires_grad=False):
    """(q, v, gate logits) as views of one (B, T, 3W) bf16 projection, logits ~ N(0, 3²)."""
    projected = torch.randn(batch, seq, 3 * heads * 2 * HEAD_K_DIM, device=device, dtype=torch.bfloat16)
    q, logits, v = _parts(projected, heads)
    logits.mul_(3)
    views = [q, v, logits]
    return [t.detach().requires_grad_() for t in views] if requires_grad else views  # detach keeps the strides


def steps(seq, batch, heads, device="cuda"):
    """{name: (step(i), bytes)}: the op's and the block's core f+b, each over INPUT_SETS input sets."""
    from neox_metala.ops import metala_core_triton
    from neox_metala.ops.metala_core_op import metala_core

    scale = HEAD_K_DIM**-0.5
    tokens = seq * batch
    k_bytes = tokens * heads * HEAD_K_DIM * 2  # a (B, T, H, K) bf16 tensor
    v_bytes = 2 * k_bytes  # (B, T, H, V), V = 2K
    row_bytes = tokens * heads * 4  # (B, T, H) fp32: a, da
    do = torch.randn(batch, seq, heads, 2 * HEAD_K_DIM, device=device, dtype=torch.bfloat16)

    op_sets = [_projection(batch, seq, heads, device, requires_grad=True) for _ in range(INPUT_SETS)]

    def op_step(i):
        o = metala_core(*op_sets[i % INPUT_SETS], scale, NORMALIZER, keep_states=True)
        o.backward(do)

    # fwd reads q, logits, v and writes o; bwd reads q, logits, v, do and writes dq, dv (bf16) and d logits (fp32;
    # autograd's cast of it to the bf16 leaf is timed too, a kernel that the compiled block fuses into its consumer)
    op_bytes = 2 * (2 * k_bytes + 2 * v_bytes) + k_bytes + v_bytes + 2 * k_bytes

    block_sets = [_projection(batch, seq, heads, device) for _ in range(INPUT_SETS)]
    grads = _parts(torch.zeros(batch, seq, 3 * heads * 2 * HEAD_K_DIM, device=device, dtype=torch.bfloat16), heads)
    a = torch.empty(batch, seq, heads, device=device)
    da = torch.randn(batch, seq, heads, device=device)
    aug_w = torch.randn(heads * HEAD_K_DIM, device=device) * 0.5

    def block_step(i):
        q, v, logits = block_sets[i % INPUT_SETS]
        _, states = metala_core_triton.metala_core_fwd(
            q, logits, v, scale, NORMALIZER, keep_states=True, augmentation=(a, aug_w)
        )
        metala_core_triton.metala_core_bwd(
            q, logits, v, scale, NORMALIZER, do, states, grads=grads, accumulate=True, augmentation=(da, aug_w)
        )

    # fwd reads q, logits, v, writes o and a; bwd reads q, logits, v, do, dv's prior and da, writes dq, d logits and
    # dv (bf16, into the projection's gradient)
    block_bytes = (2 * k_bytes + 2 * v_bytes + row_bytes) + (
        2 * k_bytes + 3 * v_bytes + row_bytes + 2 * k_bytes + v_bytes
    )
    return {"op": (op_step, op_bytes), "block": (block_step, block_bytes)}


def core_floor(seq, batch, hidden, timer, bandwidth: float) -> dict:
    """Median f+b time (CUDA events, L2 flushed before each run by `timer`) and byte floor of each of `steps`."""
    result = {}
    for name, (step, nbytes) in steps(seq, batch, hidden // (2 * HEAD_K_DIM)).items():
        for i in range(timer.warmup):
            step(i)
        times = []
        for i in range(timer.runs):
            timer.flush.random_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step(i)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        ms, floor_ms = statistics.median(times), nbytes / bandwidth * 1e3
        result[name] = {"ms": ms, "floor_ms": floor_ms, "over_floor": ms / floor_ms}
    return result
