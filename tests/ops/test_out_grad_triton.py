"""The out projection's input gradient with the epilogue backward fused (ops/out_grad_op.py) against fp64: dy =
d out · W_out in fp64, then the epilogue's backward in fp64 (ops/epilogue_op.epilogue_backward_torch on the stats
its fp64 forward stored): do, dv, dg, da, d gate_bias and d aug_balance, at token counts that leave a partial block
of tokens, seq-first and batch-first, with and without the self-augmentation and the gate bias, the GEMM alone
(dy) as well.

Runs natively on a CUDA GPU (bf16 too), or on the CPU through the Triton interpreter with TRITON_INTERPRET=1 (fp32
only: the interpreter's tensor-descriptor loads are exact in fp32 and wrong in bf16). Skips otherwise.
"""

import pytest
import torch
import triton_runs

from neox_metala.ops import epilogue_op

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
NORMALIZER = 16.0
BOUNDS = {torch.float32: 1e-5, torch.bfloat16: 2**-7}
DTYPES = [torch.float32] + ([torch.bfloat16] if DEVICE == "cuda" else [])
# small blocks at the interpreter's shapes: 16 tokens (two halves of 8), the hidden size in steps of 16
SMALL = (16, 16, 2, 2, 4, 2, False)


def _draw(dtype, batch, seq, heads, head_v_dim, hidden, seq_first, aug, bias, seed=0):
    gen = torch.Generator().manual_seed(seed)
    width, head_k_dim = heads * head_v_dim, head_v_dim // 2

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=F64) * scale

    proj = randn(batch, seq, 3 * width)
    proj[..., width // 2 : width] *= 4.0  # decay logits over strong and weak decay
    q, x, v, g = (t.unflatten(-1, (heads, -1)) for t in proj.split((width // 2, width // 2, width, width), dim=-1))
    o = randn(batch, seq, heads, head_v_dim)
    gate_bias = randn(width, scale=0.5) if bias else None
    aug_balance = randn(width // 2, scale=4.0) if aug else None
    d_out = randn(*((seq, batch) if seq_first else (batch, seq)), hidden)
    weight = randn(hidden, width, scale=hidden**-0.5)
    exact = dict(proj=proj, q=q, x=x, v=v, g=g, o=o, gate_bias=gate_bias, aug_balance=aug_balance, d_out=d_out,
                 weight=weight)  # fmt: skip
    return exact, head_k_dim


def _reference(e, seq_first, normalizer):
    """fp64 (dy, stats, do, dv, dg, da, d gate_bias, d aug_balance) of the rounded inputs."""
    _, stats = epilogue_op.epilogue_forward_torch(
        e["o"], e["q"], e["x"], e["v"], e["g"], e["gate_bias"], e["aug_balance"], normalizer
    )
    dy = e["d_out"] @ e["weight"]
    dy = (dy.transpose(0, 1) if seq_first else dy).unflatten(-1, e["o"].shape[-2:])
    d_o, dq, _, dv, dg, d_bias, d_aug = epilogue_op.epilogue_backward_torch(
        dy, e["o"], e["q"], e["x"], e["v"], e["g"], e["gate_bias"], e["aug_balance"], stats, normalizer
    )
    da = None
    if e["aug_balance"] is not None:  # dq = da · key · w, key and w > 0 nowhere zero: da from the first channel
        from neox_metala.ops.metala import decay_and_key

        key = decay_and_key(e["x"], normalizer)[1]
        w = e["aug_balance"].view(e["q"].shape[-2:])
        da = dq[..., 0] / (key[..., 0] * w[:, 0])
    return dy, stats, d_o, dv, dg, da, d_bias, d_aug


def _rel(got, want):
    return ((got.double() - want).norm() / want.norm()).item()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seq_first", [True, False], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("aug, bias", [(True, True), (False, True), (True, False)], ids=["aug-bias", "bias", "aug"])
def test_fused_out_grad_equals_the_gemm_then_the_epilogue(dtype, seq_first, aug, bias):
    from neox_metala.ops.out_grad_op import out_grad_triton

    batch, seq, heads, head_v_dim, hidden = 3, 13, 2, 32, 64  # 39 tokens: two blocks of 16 and a partial one
    e, _ = _draw(dtype, batch, seq, heads, head_v_dim, hidden, seq_first, aug, bias)
    rounded = {k: (t.to(dtype).to(F64) if t is not None else None) for k, t in e.items()}
    width = heads * head_v_dim
    parts = rounded["proj"].split((width // 2, width // 2, width, width), dim=-1)
    rounded.update(zip(("q", "x", "v", "g"), (t.unflatten(-1, (heads, -1)) for t in parts)))
    dy, stats, d_o, dv, dg, da, d_bias, d_aug = _reference(rounded, seq_first, NORMALIZER)

    proj = rounded["proj"].to(DEVICE, dtype)
    q, x, v, g = (t.unflatten(-1, (heads, -1)) for t in proj.split((width // 2, width // 2, width, width), dim=-1))
    grads = torch.zeros_like(proj)
    dv_out, dg_out = (t.unflatten(-1, (heads, -1)) for t in grads[..., width:].split(width, dim=-1))
    da_out = torch.zeros(batch, seq, heads, dtype=torch.float32, device=DEVICE) if aug else None
    o = rounded["o"].to(DEVICE, dtype)
    params = [
        None if rounded[k] is None else rounded[k].to(DEVICE, torch.float32) for k in ("gate_bias", "aug_balance")
    ]
    d_out, weight = rounded["d_out"].to(DEVICE, dtype), rounded["weight"].to(DEVICE, dtype)
    kernel_stats = stats.to(DEVICE, torch.float32).contiguous()
    got = out_grad_triton(
        d_out, weight, o, q, x, v, g, *params, kernel_stats, NORMALIZER, seq_first, (dv_out, dg_out), da_out,
        config=SMALL,
    )  # fmt: skip
    bound = BOUNDS[dtype]
    assert _rel(got[0].cpu(), d_o) < bound
    assert _rel(dg_out.cpu(), dg) < bound
    if bias:
        assert _rel(got[1].cpu(), d_bias) < 1e-5
    if aug:
        assert _rel(dv_out.cpu(), dv) < bound
        assert _rel(da_out.cpu(), da) < bound
        assert _rel(got[2].cpu(), d_aug) < 1e-5

    dy_out = torch.zeros(batch * seq, width, dtype=torch.float32, device=DEVICE)
    out_grad_triton(
        d_out, weight, o, q, x, v, g, *params, kernel_stats, NORMALIZER, seq_first, (dv_out, dg_out), da_out,
        config=SMALL, dy=dy_out,
    )  # fmt: skip
    rows = (dy.transpose(0, 1) if seq_first else dy).flatten(0, 1).flatten(-2)
    assert _rel(dy_out.cpu(), rows) < 1e-5
