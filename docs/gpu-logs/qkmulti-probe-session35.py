"""Session 35, for a later session's call: the qk gradients with several chunks per program (the prototype
qk-multi-prototype-session35.diff; apply it first: `git apply docs/gpu-logs/qk-multi-prototype-session35.diff`)
against the shipped chunk_grads_kernel on one batch slice of the block's backward, the latter's arguments as
metala_core_triton's backward passes them (captured). dq and d gate logits compared with the shipped kernel's,
then each timed (µs per launch).

    python3 docs/gpu-logs/qkmulti-probe-session35.py [--case 32x2048] [--case 8x8192]
    TRITON_INTERPRET=1 python3 docs/gpu-logs/qkmulti-probe-session35.py --smoke     # the comparison on the CPU
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import core as core_bench  # noqa: E402

from neox_metala.ops import _qk_multi  # noqa: E402
from neox_metala.ops import metala_core_triton as mt  # noqa: E402

# (BV, K_SPLIT, CHUNKS, STAGES, warps): the 8-warp split is the build that keeps 8 warps per SM (56 B spilled)
CONFIGS = [(64, 2, 4, 2, 8), (64, 2, 2, 2, 8), (64, 2, 4, 2, 4), (64, 1, 4, 2, 8)]


def captured_launch(batch, seq, heads, device, dtype):
    """The shipped qk-gradient launch's arguments of the backward's first batch slice, and fresh inputs."""
    q, v, logits, _, _, d_out = core_bench.draw(batch, seq, heads, 64, 128, dtype, device)
    _, states = mt.metala_core_fwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, keep_states=True)
    calls, by_form = [], mt._by_form

    def spy(kernel, grid, *args, **kwargs):
        if kernel is mt._kernels()["chunk_qk_grads"] and not calls:
            calls.append((args, kwargs))
        return by_form(kernel, grid, *args, **kwargs)

    mt._by_form = spy
    try:
        grads = (torch.zeros_like(q), torch.zeros_like(q, dtype=torch.float32), torch.zeros_like(v))
        mt.metala_core_bwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, d_out, states, grads=grads,
                           accumulate=True)  # fmt: skip
    finally:
        mt._by_form = by_form
    return calls[0]


def run_multi(args, kwargs, bv, k_split, chunks, stages, warps):
    grid = (kwargs["NT"] // chunks, args[4].shape[0] * args[4].shape[1], k_split)
    _qk_multi.qk_multi_kernel[grid](
        *args, **kwargs, BV=bv, K_SPLIT=k_split, CHUNKS=chunks, STAGES=stages, FACTORISED=True, num_warps=warps,
        num_stages=1,
    )  # fmt: skip


def probe(batch, seq, heads, device, smoke):
    # fp32 on the CPU: the interpreter's bf16 products are wrong (its states come out ~1e12 in either forward form)
    args, kwargs = captured_launch(batch, seq, heads, device, torch.float32 if smoke else torch.bfloat16)
    dq, dg = args[8], args[9]
    prior = (dq.clone(), dg.clone())

    def shipped():
        mt.launch(mt._kernels()["chunk_qk_grads"], lambda meta: (kwargs["NT"], args[4].shape[0] * args[4].shape[1],
                  meta.get("K_SPLIT", 1)), *args, **kwargs, FACTORISED=True)  # fmt: skip

    def fresh(fn):
        dq.copy_(prior[0]), dg.copy_(prior[1])
        fn()
        return dq.clone(), dg.clone()

    want = fresh(shipped)
    print(f"B{batch} T{seq} H{heads}: shipped pick {mt._kernels()['chunk_qk_grads'].best_config}", flush=True)
    for config in CONFIGS[1:2] if smoke else CONFIGS:  # the interpreter: two chunks per program, so T 256 has two
        if kwargs["NT"] % config[2]:
            continue
        try:
            got = fresh(lambda config=config: run_multi(args, kwargs, *config))
            error = max(((g.float() - w.float()).norm() / w.float().norm()).item() for g, w in zip(got, want))
            norms = f"{want[0].float().norm():.3g}, {want[1].norm():.3g}"
            line = f"  multi {config}: max relative difference {error:.2e} (norms {norms})"
            if not smoke:
                import triton

                ms = triton.testing.do_bench(lambda config=config: run_multi(args, kwargs, *config), warmup=10, rep=100)
                line += f", {ms * 1e3:.1f} us"
            print(line, flush=True)
        except Exception as e:
            print(f"  multi {config}: {type(e).__name__} {str(e)[:200]}", flush=True)
    if not smoke:
        import triton

        print(f"  shipped: {triton.testing.do_bench(shipped, warmup=10, rep=100) * 1e3:.1f} us", flush=True)


parser = argparse.ArgumentParser()
parser.add_argument("--case", action="append", help="BATCHxSEQ (H16)")
parser.add_argument("--smoke", action="store_true")
options = parser.parse_args()
if options.smoke:
    probe(1, 256, 2, "cpu", True)
else:
    for case in options.case or ["32x2048", "8x8192"]:
        batch, seq = (int(n) for n in case.split("x"))
        probe(batch, seq, 16, "cuda", False)
