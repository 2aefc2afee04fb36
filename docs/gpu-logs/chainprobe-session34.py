"""Session 34, call 3 (as run, reformatted): the chained kernel's configurations timed one by one at B32 T2048 and
B8 T8192, H16 K64 V128 bf16 (the whole forward, and the states only: OUTPUT False, a switch of the kernel as it ran,
metala_core_chained_kernels-calls2-6-session34.diff, whose launcher also formed chunk_states by it) against the three
launches' kernels (state updates + scan, output)."""

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
BLOCKS = ((128, 8, 1), (128, 4, 1), (64, 4, 1), (64, 8, 1), (32, 4, 1), (64, 4, 2), (128, 8, 2))


def probe(batch, seq):
    q, v, logits, _, _, _ = core_bench.draw(batch, seq, 16, 64, 128, torch.bfloat16, "cuda")
    qq, gg, vv, strides = mt._inputs(q, logits, v)
    sizes, bh = mt._sizes(qq, vv, 64)
    out = vv.new_empty(vv.shape)
    a = torch.empty(1, device="cuda")

    def chained(bv, warps, stages, output):
        states, decays = mt._scan_buffers(qq, sizes, bh)
        carried = qq.new_empty(bh, 2, 64, 128, dtype=torch.float32)
        flags = torch.zeros(sizes["NT"] * bh * 8, dtype=torch.int32, device="cuda")
        grid = (sizes["NT"] * bh * (128 // bv),)

        def run():
            flags.zero_()
            ck.chained_kernel[grid](
                qq, gg, vv, states, decays, out, a, a, carried, flags, core_bench.SCALE, **strides,
                normalizer=core_bench.NORMALIZER, **sizes, BH=bh, BK=64, BV=bv, BF16=True, OUTPUT=output, AUG=False,
                num_warps=warps, num_stages=stages,
            )  # fmt: skip

        return run

    flags = torch.zeros(sizes["NT"] * bh * 8, dtype=torch.int32, device="cuda")
    base = triton.testing.do_bench(flags.zero_, warmup=10, rep=50)
    print(f"B{batch} T{seq}: flags zeroing {base * 1e3:.1f} us", flush=True)
    for output in (True, False):
        for bv, warps, stages in BLOCKS:
            name = f"chained output={output} BV{bv} w{warps} s{stages}"
            try:
                ms = triton.testing.do_bench(chained(bv, warps, stages, output), warmup=10, rep=100)
                print(f"  {name}: {(ms - base) * 1e3:.1f} us", flush=True)
            except Exception as e:
                print(f"  {name}: {type(e).__name__} {str(e)[:100]}", flush=True)

    def forward():
        return mt.metala_core_fwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, keep_states=True)

    def states_only():
        return mt.chunk_states(q, logits, v, core_bench.NORMALIZER)

    for chained_forward, label in ((False, "three launches"), (True, "chained (autotuned)")):
        mt.CHAINED_FORWARD = chained_forward
        forward(), states_only()
        times = [triton.testing.do_bench(f, warmup=10, rep=100) * 1e3 for f in (forward, states_only)]
        pick = f", pick {mt._kernels()['chained'].best_config}" if chained_forward else ""
        print(f"  {label}: forward {times[0]:.1f} us, states only {times[1]:.1f} us{pick}", flush=True)


for batch, seq in ((32, 2048), (8, 8192)):
    probe(batch, seq)
