"""Session 34, call 2 (as run, reformatted): the chained forward against the three launches on the GPU (same inputs):
outputs and kept states, repeated launches, and a deadlock check (run under a timeout)."""

import os
import sys
import time

import torch

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import core as core_bench  # noqa: E402

from neox_metala import warmup  # noqa: E402
from neox_metala.ops import metala_core_triton as mt  # noqa: E402

warmup.use_kernel_cache(None)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


for batch, seq, decay in ((32, 2048, "mild"), (8, 8192, "mild"), (2, 300, "mixed"), (3, 130, "strong")):
    shift = {"mild": 0.0, "mixed": -4.0, "strong": -12.0}[decay]
    q, v, logits, _, _, d_out = core_bench.draw(batch, seq, 16, 64, 128, torch.bfloat16, "cuda", shift)
    res = {}
    for chained in (True, False):
        mt.CHAINED_FORWARD = chained
        t0 = time.time()
        out, states = mt.metala_core_fwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, keep_states=True)
        torch.cuda.synchronize()
        res[chained] = (out.float(), states.float(), time.time() - t0)
    (o1, s1, t1), (o2, s2, t2) = res[True], res[False]
    print(
        f"B{batch} T{seq} {decay}: out rel {rel(o1, o2):.2e} states rel {rel(s1, s2):.2e} "
        f"finite {torch.isfinite(o1).all().item()} first call {t1:.1f}/{t2:.1f} s",
        flush=True,
    )
    for _ in range(20):  # repeated launches: the flags zeroed each time
        mt.CHAINED_FORWARD = True
        out, _ = mt.metala_core_fwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER)
    torch.cuda.synchronize()
    print(f"  20 more: out rel {rel(out.float(), o2):.2e}", flush=True)
