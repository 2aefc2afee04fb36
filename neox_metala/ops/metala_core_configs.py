"""The core kernels' autotuners (ops/metala_core_triton.py launches them as `_kernels()`): which configurations each
kernel is timed over on first use of a shape, and why those (the builds' registers and spills, the timings that chose
them). Imports triton on first call.
"""

from __future__ import annotations

import functools
import os

# The interpreter (TRITON_INTERPRET=1, CPU tests) cannot time configurations: it gets the first of each
FIRST_CONFIG_ONLY = os.environ.get("TRITON_INTERPRET") == "1"

# metala_core_triton.QK_K_SPLIT's configurations of the qk gradients, (BV, K_SPLIT, warps, stages): the fastest of
# bench/core_configs.py's candidates #19-33 on an H200 (sessions 31-32, the block's shape: B32 T2048 H16 K64 V128 bf16,
# accumulating, 1,210-1,220 µs per step against the unsplit 1,294-1,305; BV 32, 2 or 4 stages 1,237-1,284; capped at
# 168 registers 1,655-1,859; 8 warps or K_SPLIT 4 1,372-1,971). Its sm90 bf16 build: 255 registers, 24 B spilled, two
# programs per SM. Its bf16 build is wrong where its V loop runs once (V <= BV: `qk_split_prune`).
QK_K_SPLIT_BLOCKS = [(64, 2, 4, 3)]


def qk_split_prune(configs, named_args, **kwargs):
    """The autotuner's configurations of the qk gradients for one launch, less the 4-warp splits whose V loop would
    run once (V <= BV). Triton 3.6 miscompiles those in bf16 on sm90 (session 33, forced, no autotuning, K 16-64,
    T 130): dq 0.75-0.82 and d gate logits 3-6 relative to fp64, the same numbers every run, for #21 (BV 64) at V 64
    and V 32, #28 (2 stages) at V 64 and #29 (BV 32) at V 32, while compute-sanitizer's memcheck, racecheck and
    synccheck report nothing; the same builds in fp16 and fp32, 8-warp splits (#19) and every case of two or more
    V steps are right (#21 at V 96 with a masked second step, 128, 192, 256, K 32-128, T 1-2048; #29 at V 64, 96,
    128). Session 31's illegal addresses (autotuned, at V 32-64) and the BV 128 builds' wrong dq (#24, #30) had one
    V step too. Upstream reports 4-warp sm90 kernels of several dots failing from Triton 3.6 on
    (triton-lang/triton #10486, #10573, #11366)."""
    v = {**named_args, **kwargs}["V"]
    return [c for c in configs if c.num_warps >= 8 or "K_SPLIT" not in c.kwargs or v > c.kwargs["BV"]]


@functools.cache
def kernels():
    """The kernels, autotuned over a few configurations each (each one compiles on first use of a shape)."""
    import triton

    from . import metala_core_chained_grad_kernels as chained_grad_kernels
    from . import metala_core_chained_kernels as chained_kernels
    from . import metala_core_dv_kernels as dv_kernels
    from . import metala_core_grad_kernels as grad_kernels
    from . import metala_core_kernels as core_kernels
    from . import metala_core_output_kernels as output_kernels
    from . import metala_core_triton

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

    # The key: the shape and the constexprs that make another build (Triton adds the tensors' dtypes, not those):
    # keyed by the shape alone, a pick timed for one build was taken for another (the plain dv's for the accumulating
    # one: 169 µs per call against 135 with its own, H200, session 23). FACTORISED left out on purpose: the strong
    # launch takes the factorised chunks' pick rather than compiling every configuration of its build.
    key = ["NT", "H", "K", "V", "ACCUMULATE", "STORED", "AUG"]
    # The scan's step is a load and a multiply-add, so small blocks cost little and give programs at small B·H:
    # B·H = 16, K = 64, V = 128 makes 128 programs of 32 x 32 or 16 x 64, 256 of 16 x 32. STAGES − 1 steps' loads in
    # flight hide the memory's latency (≤ 30 KB of shared memory, no spills at 8). Its key has no H (not an argument).
    # It works in place, so timing a configuration must restore the updates it overwrites.
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
    # The state-gradient updates and dv are latency-bound at two programs per SM (ncu on an H200, B32 T2048 H16 bf16,
    # session 19: 12% achieved occupancy, 0.6 eligible warps per scheduler, 39-42% issue slots busy): capped at 168
    # registers they run three (the updates spill nothing, dv 176 B). bench/core_configs.py (B64 T2048 and B16 T8192
    # H8, kept states): core f+b 3.96 -> 3.87 ms for each, 3.77 for both. In bench/layer.py's block the updates went
    # 0.68 -> 0.58 ms and dv stayed at 0.75 (its build that adds into the projection's gradient spills 416 B capped).
    # Not faster: the output kernel capped the same way (1% slower), the qk gradients capped at 128 or 168 (672 / 448 B
    # spilled), and 8-warp programs capped at 128 (two per SM) for all three (offered to the autotuners: no change).
    capped = ({"BV": 128}, 4, 1, 168)
    # The qk gradients (bf16, Triton 3.6, sm90 builds: bench/core_build.py): 8 warps at ~254 registers (the sums after
    # the V loop take them; the loop alone 94), no spills at BV 64; 4 warps spill ~1.2 KB, besides the out-of-bounds
    # read above. The first block splits V = 32, so that the interpreter's tests run the loop twice. Slower on an
    # H200 (docs/benchmarks.md): the channels split over K blocks (core f+b 0.633 against 0.577 ms), the V loop and
    # the sums after it as two kernels (0.594 against 0.586), a V loop per channel block (KSTEP, session 15), 16 warps
    # (session 21). BV 64 at 3 stages: the V loop's two steps' loads issued together before the first step's dots
    # (session 20, the model's build at B32 T2048 H16: 447 -> 411 µs per call; in the block 1.68 -> 1.56 ms).
    qk_grads_blocks = [({"BV": 16}, 8, 2), ({"BV": 32}, 8, 1), ({"BV": 64}, 8, 3)]
    if metala_core_triton.QK_K_SPLIT:  # its docstring
        qk_grads_blocks += [({"BV": bv, "K_SPLIT": split}, w, stages) for bv, split, w, stages in QK_K_SPLIT_BLOCKS]
    # dv recomputes its chunk's scores in each program (one BT x BT x K product, as output_kernel). No spills in
    # bf16: 4 warps take 255 registers (two programs per SM), 8 warps 149 (one), or 128 under the cap (two); fp32
    # (tests) spills 0.2-2 KB. BV 128, one program per chunk, was the fastest of 11 on an H200 (bench/core_configs.py
    # --kernels chunk_dv, B8 T2048 and B2 T8192 bf16, 2026-11-30): at 4 warps 0.05 ms per call below the best BV 64.
    # Two V blocks of 64 per program (V_STEPS: the scores formed once, the second block's loads issued by the
    # pipelining) at 3 stages under the 168 cap: in the model's build at B32 T2048 H16 (session 20) 175 -> 161 µs per
    # call, in the block 0.765 -> 0.676 ms. The same steps in output_kernel were slower at every configuration tried
    # (595-954 against 564 µs): it keeps one block. The first configuration steps twice through V = 32 (interpreter).
    dv_blocks = [
        ({"BV": 16, "V_STEPS": 2}, 4, 2),
        ({"BV": 64}, 4, 1),
        ({"BV": 64}, 4, 2),
        ({"BV": 64}, 8, 1, 128),
        ({"BV": 128}, 8, 1),
        ({"BV": 128}, 4, 1),
        capped,
        ({"BV": 64, "V_STEPS": 2}, 4, 3, 168),
    ]
    # The chained forward (ops/metala_core_chained_kernels.py); the first configuration has two V blocks at the
    # interpreter's V = 32. H200, B32 T2048 / B8 T8192 H16 bf16, each forced (session 34): BV 128 at 4 warps 750 / 666
    # µs, at 8 warps 1,277 / 1,174, BV 64 at 4 warps 1,137 / 1,041, at 8 1,995 / 1,847, BV 32 1,508 / 1,428; 2 stages
    # the same as 1. Capped at 168 or 128 registers (three or four programs per SM instead of two; 240 / 664 B
    # spilled): 803 / 745 and 1,226 / 1,105 µs (session 35).
    # Two V blocks of 64 per program (V_STEPS 2) capped at 168 registers (none spilled, three programs per SM): 661
    # against 733 µs (session 39, forced); its GPU tests passed in session 41.
    chained_blocks = [
        ({"BV": 16}, 4, 1),
        ({"BV": 128}, 4, 1),
        ({"BV": 64, "V_STEPS": 2}, 4, 1, 168),
        ({"BV": 128}, 8, 1),
        ({"BV": 64}, 4, 1),
    ]
    # The chained backward (ops/metala_core_chained_grad_kernels.py), the forward's chain mirrored with as many dots;
    # the first configuration has two V blocks at the interpreter's V = 32. sm90 bf16 builds, accumulating: BV 128 at
    # 4 warps 255 registers and 56 B spilled, BV 64 at 4 warps none spilled, BV 128 at 8 warps 222 registers; capped at
    # 168 registers they spill 232 B (BV 64) and 792 B (BV 128). Two V blocks of 64 per program (the chained
    # forward's V_STEPS) were slower on an H200 (session 42: 797 µs per step capped at 168, 842 uncapped, against 770
    # for BV 128 at 4 warps, the autotuner's pick at the block's shape).
    chained_grads_blocks = [({"BV": 16}, 4, 1), ({"BV": 128}, 4, 1), ({"BV": 64}, 4, 1), ({"BV": 128}, 8, 1)]
    # Timing a configuration runs the kernel again: with ACCUMULATE (ops/mixer_op.py) each run would add into the
    # gradients once more, so the autotuner restores them (a copy at tuning time only)
    grads = dict(key=key, restore_value=["dq", "d_gate_logits"])
    return {
        "state_updates": triton.autotune(configs(update_blocks), key=key)(core_kernels.state_updates_kernel),
        "state_grad_updates": triton.autotune(configs([*update_blocks, capped]), key=key)(
            core_kernels.state_grad_updates_kernel
        ),
        "scan": scan(core_kernels.scan_kernel),
        "output": triton.autotune(configs([({}, 8, 2), ({}, 4, 2), ({}, 8, 3)]), key=key)(output_kernels.output_kernel),
        # timing a configuration runs the whole chain again: its flags start from zero each time
        "chained": triton.autotune(configs(chained_blocks), key=key, reset_to_zero=["flags"])(
            chained_kernels.chained_kernel
        ),
        "chunk_qk_grads": triton.autotune(
            configs(qk_grads_blocks), **grads, prune_configs_by={"early_config_prune": qk_split_prune}
        )(grad_kernels.chunk_grads_kernel),
        # timing a configuration runs the whole chain again (its flags from zero) and adds into dv once more
        "chained_grads": triton.autotune(
            configs(chained_grads_blocks), key=key, reset_to_zero=["flags"], restore_value=["dv"]
        )(chained_grad_kernels.chained_grads_kernel),
        "chunk_dv": triton.autotune(configs(dv_blocks), key=key, restore_value=["dv"])(dv_kernels.chunk_dv_kernel),
        # sm90 bf16 builds: 96 registers at 4 warps, 62 at 8 (250 at 2)
        "decay_rows": triton.autotune(configs([({}, 4, 1), ({}, 8, 1)]), key=["NT", "H", "K"])(
            grad_kernels.decay_rows_kernel
        ),
    }
