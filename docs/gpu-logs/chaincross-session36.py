"""Session 36, call 3: where the chained forward (ops/metala_core_chained_kernels.py) stops paying. The whole model at
T=8192 (380M config: micro batch 2, H8, so 16 chains of 128 chunks) ran at 1.545x the plain baseline with it against
1.586x in session 32 without it: with few chains a chain's ~3.1 us step is not hidden behind other programs' work.
metala_core_fwd with kept states (the training forward), chained against the three launches, at the block's and the
whole model's shapes and between (K 64, V 128, bf16), us per forward; the chains are B*H (the autotuner's BV 128)."""

import os
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import core as core_bench  # noqa: E402

from neox_metala import warmup  # noqa: E402
from neox_metala.ops import metala_core_triton as mt  # noqa: E402

warmup.use_kernel_cache(None)
print(f"{torch.cuda.get_device_name()}: {torch.cuda.get_device_properties(0).multi_processor_count} SMs", flush=True)
SHAPES = [  # (B, T, H)
    (32, 2048, 16), (16, 2048, 16), (16, 2048, 8), (8, 2048, 16), (8, 2048, 8), (4, 2048, 8), (2, 2048, 8),
    (8, 8192, 16), (4, 8192, 16), (8, 8192, 8), (2, 8192, 16), (4, 8192, 8), (1, 8192, 16), (2, 8192, 8),
    (1, 8192, 8), (1, 32768, 16), (2, 32768, 8),
]  # fmt: skip
for batch, seq, heads in SHAPES:
    q, v, logits, _, _, _ = core_bench.draw(batch, seq, heads, 64, 128, torch.bfloat16, "cuda")
    times = {}
    for chained in (True, False):
        mt.CHAINED_FORWARD = chained

        def run(q=q, logits=logits, v=v):
            mt.metala_core_fwd(q, logits, v, core_bench.SCALE, core_bench.NORMALIZER, keep_states=True)

        run()  # the autotuners' picks for this shape
        times[chained] = triton.testing.do_bench(run, warmup=10, rep=100) * 1e3
    print(
        f"B{batch} T{seq} H{heads}: chains {batch * heads:4d}, chunks {seq // 64:4d}: chained {times[True]:7.1f} us,"
        f" three launches {times[False]:7.1f} us, ratio {times[True] / times[False]:.3f}",
        flush=True,
    )
