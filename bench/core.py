"""The MetaLA core alone, forward + backward per call: fla's chunk_gla (through ops/core_op.py's functions, as
training runs it) against MetaLA's own kernels (ops/metala_core_triton.py), bf16, H=8, K=64, V=128.

    python bench/core.py [--cases 8x2048 2x8192] [--runs 30] [--warmup 5]
    TRITON_INTERPRET=1 python bench/core.py --smoke     # the same logic on the CPU, tiny shape, no GPU

One line per case: median ms of each (CUDA events, L2 flushed before every run), the byte floor of the MetaLA op
(fwd reads q, gate logits, v bf16, writes o; bwd reads them and do, writes dq, dv bf16 and d logits fp32; fla's
reads fp32 log α instead of the logits and also reads and writes the key) over the copy bandwidth measured here,
each time over that floor, the speed-up, the largest norm-relative difference between the two paths' o, dq, dv and d
gate logits (fla's chained from its d log α, with the key's path), and the share of chunks whose scores took the
factorised form. A last case draws strong decays (gate logits around -200: every chunk takes the exact form, by
sub-chunks), the kernels' worst case; there d log α (so d logits) is a difference of terms ~1e5 times larger than
itself, so both paths' values are rounding noise and differ by O(1) relative. Then the tuned configurations.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import core_op, metala_core, metala_core_triton  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_timing import copy_bandwidth, median_ms, parse_args, relative_differences  # noqa: E402

HEADS, HEAD_K_DIM, HEAD_V_DIM = 8, 64, 128
SCALE = HEAD_K_DIM**-0.5
NORMALIZER = 16.0  # MetaLA's decay normalizer (ops/options.py)


def draw(batch, seq, heads, head_k_dim, head_v_dim, dtype, device, logit_shift=0.0):
    """bf16 q, v, gate logits, do; the fp32 log α = logsigmoid(logits)/16 and the key -expm1(log α) in q's dtype
    that fla needs (MetaLA's core forms both from the logits)."""
    gen = torch.Generator(device=device).manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, device=device, generator=gen)  # noqa: E731
    logits = (rand(batch, seq, heads, head_k_dim) * 3 + logit_shift).to(dtype)
    log_decay = F.logsigmoid(logits.float()) / NORMALIZER
    q = rand(batch, seq, heads, head_k_dim).to(dtype)
    v, d_out = (rand(batch, seq, heads, head_v_dim).to(dtype) for _ in range(2))
    return q, v, logits, log_decay, metala_core.key_from_log_decay(log_decay).to(dtype), d_out


def zero_gradients(q, v):
    """Zero (dq, d gate logits, dv) for MetaLA's core backward to add into (accumulate=True), as ops/mixer_op.py's
    one op has it add into the projection's gradient."""
    return torch.zeros_like(q), torch.zeros_like(q, dtype=torch.float32), torch.zeros_like(v)


def fla_call(q, v, logits, log_decay, key, d_out):
    """fla's forward and backward as the custom ops call them -> (o, dq, dv, d logits through log α and the key)."""
    if q.is_cuda:
        output, scores = core_op.fla_chunk_forward(q, key, v, log_decay, SCALE)
        dq, dkey, dv, dlog = core_op.fla_chunk_backward(q, key, v, log_decay, SCALE, scores, d_out)
    else:  # --smoke: the ops' CPU kernels (pure PyTorch) stand in for fla
        output, scores = core_op.gla_forward(q, key, v, log_decay, SCALE)
        dq, dkey, dv, dlog = core_op.gla_backward(q, key, v, log_decay, scores, d_out, SCALE)
    dlog = dlog - dkey.float() * log_decay.exp()  # key = -expm1(g): dkey/dg = -e^g
    return output, dq, dv, dlog * torch.sigmoid(-logits.float()) / NORMALIZER  # g = logsigmoid(x) / 16


def metala_call(q, v, logits, log_decay, key, d_out):
    output, _ = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER)
    dq, dlogits, dv = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, d_out)
    return output, dq, dv, dlogits


def floor_ms(q, v, bandwidth) -> float:
    """MetaLA's core's bytes in and out at the copy bandwidth: q, gate logits (q's dtype), v in; o out; and back,
    q, logits, v, do in, dq, d logits (fp32), dv out."""
    q_bytes, v_bytes, d_logits_bytes = q.numel() * q.element_size(), v.numel() * v.element_size(), q.numel() * 4
    forward = 2 * q_bytes + v_bytes + v_bytes
    backward = 2 * q_bytes + v_bytes + v_bytes + (q_bytes + v_bytes + d_logits_bytes)
    return (forward + backward) / bandwidth * 1e3


def factorised_share(log_decay) -> float:
    cum = metala_core._to_chunks(log_decay, metala_core.CHUNK_SIZE, torch.float32).cumsum(-2)
    return metala_core.factorised_chunks(cum).float().mean().item()


def run_case(batch, seq, heads, head_k_dim, head_v_dim, dtype, device, bandwidth, args, logit_shift=0.0, label=""):
    inputs = draw(batch, seq, heads, head_k_dim, head_v_dim, dtype, device, logit_shift)
    cuda = inputs[0].is_cuda
    fla_ms = median_ms(lambda: fla_call(*inputs), args.warmup, args.runs, cuda)
    metala_ms = median_ms(lambda: metala_call(*inputs), args.warmup, args.runs, cuda)
    floor = floor_ms(inputs[0], inputs[1], bandwidth)
    differences = relative_differences(("o", "dq", "dv", "dlogits"), metala_call(*inputs), fla_call(*inputs))
    worst = max(differences, key=differences.get)
    print(
        f"CORE B{batch} T{seq} H{heads} K{head_k_dim} V{head_v_dim}{label}: fla {fla_ms:.3f} ms, "
        f"metala {metala_ms:.3f} ms, floor {floor:.3f} ms "
        f"(fla {fla_ms / floor:.1f}x, metala {metala_ms / floor:.1f}x), "
        f"speed-up {fla_ms / metala_ms:.2f}x, max rel diff {differences[worst]:.2e} ({worst}; "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items())
        + f"), factorised chunks {factorised_share(inputs[3]):.0%}",
        flush=True,
    )


def main():
    args = parse_args(__doc__, ["8x2048", "2x8192"], "BATCHxSEQ")
    if args.smoke:
        shape, dtype, device = (1, 80, 2, 16, 32), torch.float32, "cpu"
        cases = [(shape, 0.0, ""), (shape, -200.0, " strong")]
    else:
        dtype, device = torch.bfloat16, "cuda"
        shapes = [(*map(int, case.split("x")), HEADS, HEAD_K_DIM, HEAD_V_DIM) for case in args.cases]
        cases = [(shape, 0.0, "") for shape in shapes] + [(shapes[0], -200.0, " strong")]
    bandwidth = copy_bandwidth(device == "cuda")
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)
    for shape, logit_shift, label in cases:
        run_case(*shape, dtype, device, bandwidth, args, logit_shift, label)
    for name, kernel in metala_core_triton._kernels().items():
        print(f"tuned {name}: {getattr(kernel, 'best_config', None)}")


if __name__ == "__main__":
    main()
