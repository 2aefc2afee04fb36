"""Session 35, for a later session's call: the qk gradients and dv with several chunks per program (the prototypes
of qk-multi-prototype-session35.diff; apply it first: `git apply docs/gpu-logs/qk-multi-prototype-session35.diff`)
against the shipped chunk_grads_kernel and chunk_dv_kernel on one batch slice of the block's backward, their
arguments as metala_core_triton's backward passes them (captured). The outputs (dq and d gate logits; dv) compared
with the shipped kernel's, then each timed (µs per launch).

    python3 docs/gpu-logs/qkmulti-probe-session35.py [--case 32x2048] [--case 8x8192]
    TRITON_INTERPRET=1 python3 docs/gpu-logs/qkmulti-probe-session35.py --smoke     # the comparisons on the CPU
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

# per shipped kernel: its prototype, the launch's outputs (argument positions), and the configurations
# (constexprs, warps, register cap); qk: the 8-warp K_SPLIT 2 build keeps 8 warps per SM (56 B spilled); dv: BV 64
# under the 168 cap two programs per SM (90 KB of shared memory each), BV 128 at 8 warps one
PROBES = {
    "chunk_qk_grads": (
        _qk_multi.qk_multi_kernel,
        (8, 9),
        [
            (dict(BV=64, K_SPLIT=2, CHUNKS=4, STAGES=2), 8, None),
            (dict(BV=64, K_SPLIT=2, CHUNKS=2, STAGES=2), 8, None),
            (dict(BV=64, K_SPLIT=2, CHUNKS=4, STAGES=2), 4, None),
            (dict(BV=64, K_SPLIT=1, CHUNKS=4, STAGES=2), 8, None),
        ],
    ),
    "chunk_dv": (
        _qk_multi.dv_multi_kernel,
        (6,),
        [
            (dict(BV=64, CHUNKS=4, STAGES=2), 4, 168),
            (dict(BV=64, CHUNKS=2, STAGES=2), 4, 168),
            (dict(BV=128, CHUNKS=4, STAGES=2), 8, None),
        ],
    ),
}


def captured_launches(batch, seq, heads, device, dtype):
    """{kernel name: (args, kwargs)} of the shipped launches of the backward's first batch slice."""
    q, v, logits, _, _, d_out = core_bench.draw(batch, seq, heads, 64, 128, dtype, device)
    _, states = mt.metala_core_fwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, keep_states=True)
    calls, by_form = {}, mt._by_form

    def spy(kernel, grid, *args, **kwargs):
        for name in PROBES:
            if kernel is mt._kernels()[name] and name not in calls:
                calls[name] = (args, kwargs)
        return by_form(kernel, grid, *args, **kwargs)

    mt._by_form = spy
    try:
        grads = (torch.zeros_like(q), torch.zeros_like(q, dtype=torch.float32), torch.zeros_like(v))
        mt.metala_core_bwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, d_out, states, grads=grads,
                           accumulate=True)  # fmt: skip
    finally:
        mt._by_form = by_form
    return calls


def probe_kernel(name, args, kwargs, smoke):
    """The prototype's configurations of one kernel against the shipped launch on the captured arguments."""
    prototype, outputs, configs = PROBES[name]
    chains = args[4].shape[0] * args[4].shape[1]  # states / state gradients: (B, H, N, K, V)
    priors = [args[i].clone() for i in outputs]

    def blocks(meta):  # the grid's third dimension
        if name == "chunk_qk_grads":
            return meta.get("K_SPLIT", 1)
        return -(-kwargs["V"] // (meta["BV"] * meta.get("V_STEPS", 1)))

    def shipped():
        grid = lambda meta: (kwargs["NT"], chains, blocks(meta))  # noqa: E731
        mt.launch(mt._kernels()[name], grid, *args, **kwargs, FACTORISED=True)

    def multi(constexprs, warps, cap):
        prototype[(kwargs["NT"] // constexprs["CHUNKS"], chains, blocks(constexprs))](
            *args, **kwargs, **constexprs, FACTORISED=True, num_warps=warps, num_stages=1, maxnreg=cap
        )

    def fresh(fn):
        for i, prior in zip(outputs, priors):
            args[i].copy_(prior)
        fn()
        return [args[i].clone() for i in outputs]

    want = fresh(shipped)
    print(f"  {name}: shipped pick {mt._kernels()[name].best_config}", flush=True)
    for constexprs, warps, cap in configs[1:2] if smoke else configs:  # the interpreter: T 256, two chunks
        label = f"  {name} multi {constexprs} w{warps} cap {cap}"
        try:
            got = fresh(lambda c=constexprs, w=warps, r=cap: multi(c, w, r))
            error = max(((g.float() - w.float()).norm() / w.float().norm()).item() for g, w in zip(got, want))
            label += f": max relative difference {error:.2e}"
            if not smoke:
                import triton

                ms = triton.testing.do_bench(lambda c=constexprs, w=warps, r=cap: multi(c, w, r), rep=100)
                label += f", {ms * 1e3:.1f} us"
            print(label, flush=True)
        except Exception as e:
            print(f"{label}: {type(e).__name__} {str(e)[:200]}", flush=True)
    if not smoke:
        import triton

        print(f"  {name} shipped: {triton.testing.do_bench(shipped, rep=100) * 1e3:.1f} us", flush=True)


def probe(batch, seq, heads, device, smoke):
    # fp32 on the CPU: the interpreter's bf16 products are wrong (its states come out ~1e12 in either forward form)
    calls = captured_launches(batch, seq, heads, device, torch.float32 if smoke else torch.bfloat16)
    print(f"B{batch} T{seq} H{heads}", flush=True)
    for name, (args, kwargs) in calls.items():
        probe_kernel(name, args, kwargs, smoke)


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
