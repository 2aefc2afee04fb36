"""Session 35, call 1: what holds the chained forward (ops/metala_core_chained_kernels.py) back. Its BV 128 4-warp
build takes 252 registers (two programs per SM); the same build capped at 168 (three per SM, 240 B spilled) and
128 (four, 664 B); each with its flags zeroed (the real chain) and with them all set (no program waits: the states it
reads are wrong, the time is the kernel's without the chain). And B1 H16 T8192: 16 chains of 128 chunks, too few
programs to fill the GPU, whose time per chunk is about the chain's latency per step."""

import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import core as core_bench  # noqa: E402

from neox_metala import warmup  # noqa: E402
from neox_metala.ops import metala_core_chained_kernels as ck  # noqa: E402
from neox_metala.ops import metala_core_triton as mt  # noqa: E402

warmup.use_kernel_cache(None)


def probe(batch, seq, heads):
    q, v, logits, _, _, _ = core_bench.draw(batch, seq, heads, 64, 128, torch.bfloat16, "cuda")
    qq, gg, vv, strides = mt._inputs(q, logits, v)
    sizes, bh = mt._sizes(qq, vv, 64)
    out = vv.new_empty(vv.shape)
    a = torch.empty(1, device="cuda")
    states, decays = mt._scan_buffers(qq, sizes, bh)
    carried = qq.new_empty(bh, 2, 64, 128, dtype=torch.float32)
    flags = torch.zeros(sizes["NT"] * bh * 8, dtype=torch.int32, device="cuda")

    def chained(bv, warps, maxnreg, wait):
        grid = (sizes["NT"] * bh * (128 // bv),)

        def run():
            flags.fill_(0 if wait else 1)
            ck.chained_kernel[grid](
                qq, gg, vv, states, decays, out, a, a, carried, flags, core_bench.SCALE, **strides,
                normalizer=core_bench.NORMALIZER, **sizes, BH=bh, BK=64, BV=bv, BF16=True, AUG=False,
                num_warps=warps, num_stages=1, maxnreg=maxnreg,
            )  # fmt: skip

        return run

    base = triton.testing.do_bench(lambda: flags.fill_(0), warmup=10, rep=50)
    print(f"B{batch} T{seq} H{heads}: flags fill {base * 1e3:.1f} us", flush=True)
    for bv, warps, maxnreg in ((128, 4, None), (128, 4, 168), (128, 4, 128)):
        for wait in (True, False):
            name = f"BV{bv} w{warps} maxnreg {maxnreg} {'chain' if wait else 'no waits'}"
            try:
                ms = triton.testing.do_bench(chained(bv, warps, maxnreg, wait), warmup=10, rep=100)
                print(f"  {name}: {(ms - base) * 1e3:.1f} us", flush=True)
            except Exception as e:
                print(f"  {name}: {type(e).__name__} {str(e)[:200]}", flush=True)


for batch, seq, heads in ((32, 2048, 16), (8, 8192, 16), (1, 8192, 16)):
    probe(batch, seq, heads)
