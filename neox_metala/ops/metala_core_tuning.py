"""Which configurations each of MetaLA's core kernels (ops/core_k.py, grad_k.py,
seq_k.py) is autotuned over, and why: the kernels wrapped in triton.autotune, for
ops/metala_core_triton.py's launchers. Each configuration compiles on first use of a shape.

Imports triton on first call of `kernels`.
"""

from __future__ import annotations

import functools
import os

# The interpreter (TRITON_INTERPRET=1, CPU tests) cannot time configurations: it gets the first of each
FIRST_CONFIG_ONLY = os.environ.get("TRITON_INTERPRET") == "1"


@functools.cache
def kernels():
    """The kernels, autotuned over a few configurations each (each one compiles on first use of a shape)."""
    import triton

    from . import metala_core_grad_kernels as grad_k
    from . import metala_core_kernels as core_k
    from . import metala_core_seq_kernels as seq_k

    # Few configurations, each compiled once per shape. Register use read from sm90 builds (ptxas, triton 3.9):
    # the chunk gradients spill ~1 KB at BV=64 but ≤ 120 B at BV ≤ 32 with 8 warps.
    # The chunk gradients with 4 warps are left out: Triton 3.6's bf16 build of them reads out of bounds when T is
    # below one chunk (an illegal address on the H200, 2026-11-29; fp16 / fp32 and the other configs are clean).
    def configs(blocks):
        """(meta-parameters, warps, stages[, register cap]) -> the configurations."""
        configs = [
            triton.Config(block, num_warps=w, num_stages=s, maxnreg=(cap or [None])[0]) for block, w, s, *cap in blocks
        ]
        return configs[:1] if FIRST_CONFIG_ONLY else configs

    key = ["NT", "H", "K", "V"]
    # The scan's step is a load and a multiply-add, so small blocks cost little and give programs at small B·H:
    # B·H = 16, K = 64, V = 128 makes 128 programs of 32 x 32 or 16 x 64, 256 of 16 x 32. STAGES − 1 steps' loads
    # in flight hide the memory's latency behind the steps (≤ 30 KB of shared memory, no spills at 8). Its key has
    # no H (not an argument); NT tells apart the shapes of one run. The scan works in place, so timing a
    # configuration must restore the updates it overwrites.
    scan_blocks = [
        ({"BK": 32, "BV": 32, "STAGES": 8}, 4, 1),
        ({"BK": 16, "BV": 64, "STAGES": 8}, 4, 1),
        ({"BK": 32, "BV": 64, "STAGES": 8}, 4, 1),
        ({"BK": 16, "BV": 32, "STAGES": 8}, 2, 1),
        ({"BK": 32, "BV": 32, "STAGES": 4}, 4, 1),
    ]
    scan = triton.autotune(configs(scan_blocks), key=["NT", "K", "V"], restore_value=["buffer"])
    # Every list below: the first configuration is the interpreter's (small blocks, so that its tests at V = 32 see
    # several V blocks); the others are the fastest of bench/core_configs.py's wider candidates on an H200 (bf16,
    # B8 T2048 and B2 T8192, 2026-11-29: the core f+b 0.741 -> 0.565 ms with all of them, states recomputed).
    # The updates: fastest with whole rows of V per program (one decay cumsum per chunk instead of one per V block);
    # BV >= 64 spills in fp32 (a test-only path on GPUs), so the autotuner, which tunes per dtype, keeps 32 there.
    update_blocks = [({"BV": 16}, 4, 1), ({"BV": 32}, 4, 1), ({"BV": 64}, 4, 1), ({"BV": 128}, 4, 1)]
    # The chunk gradients without dv (bf16, Triton 3.6): still 255 registers at 8 warps whatever BV or stages,
    # which the intra-chunk gradients after the V loop take (the loop alone: 94); at BV 32, 24 B spilled at one or
    # two stages (168 B with dv), at BV 64 136 B (sm90 builds, bench/core_build.py; before the kernels formed the
    # decay from the gate logits themselves: 0, 8 and 104 B). 4 warps spill 800 B, besides the out-of-bounds read
    # above. The first block splits V = 32, so that the interpreter's tests run the loop twice. Splitting it over K
    # blocks instead ((64, BK) tiles after the loop, two programs per SM, do vᵀ formed again by each) was slower on
    # an H200 (core f+b 0.633 against 0.577 ms, B8 T2048 bf16, 2026-11-29) and its 4-warp builds were wrong in bf16.
    # The V loop and the intra-chunk part as two kernels (the loop's sums through fp32 buffers) were slower too
    # (core f+b with kept states 0.594 against 0.586 ms, B8 T2048 bf16, 2026-11-30). So were each kernel's channels
    # in blocks, one V loop per block (KSTEP, session 15: 0.603-0.853 against 0.528 ms; removed) and, for this
    # kernel and dv, a launch per form of the scores (factorised chunks by a build without the sub-chunk form's
    # registers, then the strong-decay ones): 0.525 against 0.529 ms, and its dv builds at BV <= 32 faulted on an
    # H200 (session 15, 2026-11-30); not kept.
    qk_grads_blocks = [({"BV": 16}, 8, 2), ({"BV": 32}, 8, 1), ({"BV": 64}, 8, 1)]
    # dv recomputes its chunk's scores in each V block's program (one BT x BT x K product, as output_kernel).
    # No spills in bf16: 4 warps take 255 registers (two programs per SM), 8 warps 149 (one), or 128 under the cap
    # (two). fp32 (tests) spills 0.2-2 KB. The first block splits V = 32, so that the interpreter's tests see a
    # second V block.
    # BV 128, one program per chunk (its scores formed once, q and the gate logits read once), was the fastest of 11
    # on an H200 (bench/core_configs.py --kernels chunk_dv, B8 T2048 and B2 T8192 bf16, 2026-11-30): at 4 warps
    # 0.05 ms per call below the best BV 64 (~1/3 of the kernel), at 8 warps 0.017; both correct in bf16 and fp16.
    dv_blocks = [
        ({"BV": 16}, 4, 1),
        ({"BV": 64}, 4, 1),
        ({"BV": 64}, 4, 2),
        ({"BV": 64}, 8, 1, 128),
        ({"BV": 128}, 8, 1),
        ({"BV": 128}, 4, 1),
    ]
    # Timing a configuration runs the kernel again: with ACCUMULATE (ops/mixer_op.py) each run would add into the
    # gradients once more, so the autotuner restores them (a copy at tuning time only)
    grads = dict(key=key, restore_value=["dq", "d_gate_logits", "dv"])
    # The sequential forward and dv: one program per (B·H, V block), N chunks each, STAGES chunks' loads in flight.
    # sm90 bf16 builds at 8 warps and 2 stages: no spills at BV 32 and 64 (forward 247 and 236 registers, dv 255),
    # dv at BV 128 spills 208 B. 8 warps only: with 4 warps (BV 16, 2 stages) the bf16 forward's output was wrong on
    # an H200 and the autotuning of the list that held it faulted (illegal address, session 18); fp32 was right.
    # The first splits V = 32 in two for the interpreter's tests.
    sequential_blocks = [({"BV": bv, "STAGES": stages}, 8, 1) for bv, stages in [(16, 2), (64, 2), (32, 2), (64, 1)]]
    return {
        "sequential_forward": triton.autotune(configs(sequential_blocks), key=["BH", "NT", "H", "K", "V"])(
            seq_k.sequential_forward_kernel
        ),
        "sequential_dv": triton.autotune(
            configs(sequential_blocks), key=["BH", "NT", "H", "K", "V"], restore_value=["dv"]
        )(seq_k.sequential_dv_kernel),
        "state_updates": triton.autotune(configs(update_blocks), key=key)(core_k.state_updates_kernel),
        "state_grad_updates": triton.autotune(configs(update_blocks), key=key)(core_k.state_grad_updates_kernel),
        "scan": scan(core_k.scan_kernel),
        "output": triton.autotune(configs([({}, 8, 2), ({}, 4, 2), ({}, 8, 3)]), key=key)(core_k.output_kernel),
        "chunk_grads": triton.autotune(configs([({"BV": 32}, 8, 2), ({"BV": 16}, 8, 2)]), **grads)(
            grad_k.chunk_grads_kernel
        ),
        "chunk_qk_grads": triton.autotune(configs(qk_grads_blocks), **grads)(grad_k.chunk_grads_kernel),
        "chunk_dv": triton.autotune(configs(dv_blocks), key=key, restore_value=["dv"])(grad_k.chunk_dv_kernel),
    }
