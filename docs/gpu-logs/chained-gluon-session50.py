"""Session 50's record (not shipped): this Gluon kernel was slower than the Triton kernel it would replace. H200,
bench/core_ncu.py --timings --augment --accumulate --keep-states, B32 T2048 H16 bf16 (calls 1 and 2): 766 µs per
launch against chained_kernel's 664 (uncapped, 248 registers: 763; capped at 168, none spilled, as launched); core
f+b 2.413 against 2.314 ms. Its GPU tests passed (output, states, a against fp64 at T130 mild/mixed, T2048,
T300 open-shut, with and without self-augmentation; the Triton kernel's results to bf16's rounding at 64 chains of 64
chunks). It was launched from metala_core_triton._chained, before the Triton launch, with grid (N · B·H,), 4 warps,
maxnreg 168, the same carried buffer and flags. For the next session, variants (HALVES: the chain's part and the
output by V halves of 64, as the Triton kernel's V_STEPS 2; VIA_SMEM: 16-byte stores of the states and the output
through shared memory) and a driver that times them against the shipped launch in one process:

    python docs/gpu-logs/chained-gluon-session50.py --build   # a CPU: each variant's sm90 build
    python docs/gpu-logs/chained-gluon-session50.py           # a GPU (from the repository root): compared and timed
    TRITON_INTERPRET=1 python docs/gpu-logs/chained-gluon-session50.py --dry   # a CPU: the set-up, small
    ncu --profile-from-start off ... python docs/gpu-logs/chained-gluon-session50.py --ncu   # one launch of each

The chained forward (metala_core_chained_kernels.chained_kernel at the model's shape: K 64, V 128, chunks of 64,
bf16) in Gluon (Triton 3.6's `triton.experimental.gluon`), one program per (chunk, batch·head) holding all 128 value
columns, numbered chunk-major as the Triton kernel's (its docstring has the chain's protocol: the two-slot fp32
carried states, the flags, why waiting is safe). The kernel chooses its layouts: q, the gate logits and v go to
shared memory by cp.async, every elementwise step runs in the wgmma accumulator's layout, and the four products
(the chunk's update Uₙ = (k ⊙ e^(G_last − G))ᵀ v, its scores, then A v + (q ⊙ e^G) hₙ into one accumulator) run as
wgmma from shared memory, the first two while the self-augmentation's a is formed and before the wait for hₙ.

Same arithmetic as the Triton kernel (metala_core.py's factorised form about G_last / 2 for the scores and q ⊙ e^G,
the exact e^(G_last − G) for the update, so that chunks of strong decay are chained exactly); their outputs and a are
masked, as the Triton kernel's, for output_kernel's strong launch.

"""

from __future__ import annotations

import os
import sys

import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    async_copy,
    fence_async_shared,
    warpgroup_mma,
    warpgroup_mma_wait,
)

sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "bench")]
from neox_metala.ops.metala_core_gluon_kernels import STRONG_DECAY, _exp, _neg_expm1  # noqa: E402


@gluon.jit
def _log_sigmoid(x):
    """logsigmoid(x) = min(x, 0) − log1p(e^−|x|), log1p by metala_core_kernels._log1p's polynomial."""
    y = _exp(-gl.abs(x))
    p = (0.0051261021233726485 * y - 0.029074064606579537) * y + 0.0775160866235987
    p = (p * y - 0.13602247612385465) * y + 0.19076880730853912
    p = (p * y - 0.2483539898720075) * y + 0.33318121707353093
    p = (p * y - 0.4999944497632982) * y + 0.9999999659255084
    return gl.minimum(x, 0.0) - p * y


@gluon.jit
def _add(a, b):
    return a + b


@gluon.jit
def chained_forward_kernel(
    q, gate_logits, v, states, decays, out, aug_w, aug_a, carried, flags, scale, stride_q, stride_g, stride_v,
    normalizer, T, NT, BH, H: gl.constexpr, AUG: gl.constexpr, HALVES: gl.constexpr = 1, VIA_SMEM: gl.constexpr = False,
):  # fmt: skip
    """chained_kernel's outputs, states, decays and (AUG) a, with its buffers (carried (B·H, 2, K, V) fp32, flags
    zero, one per (chunk, batch·head)). Grid (N · B·H,), chunk-major; 4 warps. HALVES 2: the chain's part and the
    output by V halves of 64, one after the other (the Triton kernel's V_STEPS 2: half the registers for the state,
    its update and the output); VIA_SMEM: the states and the output stored through shared memory in 16-byte
    vectors instead of from the accumulator's layout (4 bytes a thread)."""
    BT: gl.constexpr = 64
    K: gl.constexpr = 64
    V: gl.constexpr = 128
    pid = gl.program_id(0)
    n, i_bh = pid // BH, pid % BH
    i_b, i_h = i_bh // H, i_bh % H

    ld: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])  # 16-byte copies
    rows_of: gl.constexpr = gl.BlockedLayout([16, 2], [4, 8], [1, 4], [1, 0])  # the cumsum along a thread's rows
    acc64: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    acc_h: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 128 // HALVES, 16]
    )
    tok_k: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, K], gl.bfloat16)
    tok_t: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, BT], gl.bfloat16)

    # q and the gate logits, then v, straight into shared memory (zero past T)
    first = (i_b * T + n * BT).to(gl.int64)
    rows = gl.arange(0, BT, layout=gl.SliceLayout(1, ld))
    k_cols = gl.arange(0, K, layout=gl.SliceLayout(0, ld))
    in_t = ((n * BT + rows) < T)[:, None]
    inside = in_t & (k_cols < K)[None, :]
    q_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k)
    g_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k)
    VH: gl.constexpr = V // HALVES
    tok_h: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, VH], gl.bfloat16)
    v0_s = gl.allocate_shared_memory(gl.bfloat16, [BT, VH], tok_h)
    v1_s = gl.allocate_shared_memory(gl.bfloat16, [BT, VH], tok_h)  # unused with HALVES 1
    tile = rows[:, None] * stride_q + k_cols[None, :]
    async_copy.async_copy_global_to_shared(q_s, q + first * stride_q + i_h * K + tile, mask=inside)
    tile = rows[:, None] * stride_g + k_cols[None, :]
    async_copy.async_copy_global_to_shared(g_s, gate_logits + first * stride_g + i_h * K + tile, mask=inside)
    async_copy.commit_group()
    h_cols = gl.arange(0, VH, layout=gl.SliceLayout(0, ld))
    tile = rows[:, None] * stride_v + h_cols[None, :]
    v_mask = in_t & (h_cols < VH)[None, :]
    async_copy.async_copy_global_to_shared(v0_s, v + first * stride_v + i_h * V + tile, mask=v_mask)
    if HALVES == 2:
        async_copy.async_copy_global_to_shared(v1_s, v + first * stride_v + i_h * V + VH + tile, mask=v_mask)
    async_copy.commit_group()
    r = gl.arange(0, BT, layout=gl.SliceLayout(1, rows_of))
    c = gl.arange(0, K, layout=gl.SliceLayout(0, rows_of))
    t = n * BT + r
    if AUG:
        w = gl.load(aug_w + i_h * K + c).to(gl.float32)
    async_copy.wait_group(1)  # q and the logits
    gl.thread_barrier()

    # the decay terms (metala_core_kernels._chunk_decay, _reference_factors), each thread 16 rows of two channels
    q_b = q_s.load(rows_of).to(gl.float32)
    logits = g_s.load(rows_of).to(gl.float32)
    log_decay = gl.where((t < T)[:, None], _log_sigmoid(logits) * (1.0 / normalizer), 0.0)
    cum = gl.associative_scan(log_decay, 0, _add)
    cum_last = gl.sum(log_decay, 0)
    key = _neg_expm1(log_decay)
    chunk_decays = _exp(cum_last)
    offset = cum - cum_last[None, :] * 0.5
    to_ref = _exp(offset)
    at_ref = _exp(cum_last * 0.5)[None, :]
    to_end_s = gl.allocate_shared_memory(
        gl.bfloat16, [BT, K], tok_k, (key * _exp(cum_last[None, :] - cum)).to(gl.bfloat16)
    )  # exact: ≤ 1 for any decay
    q_scaled_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k, (q_b * to_ref).to(gl.bfloat16))
    key_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k, (key * _exp(-offset)).to(gl.bfloat16))
    q_start_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k, (q_b * to_ref * at_ref).to(gl.bfloat16))
    async_copy.wait_group(0)  # v
    gl.thread_barrier()
    fence_async_shared()
    update0 = warpgroup_mma(to_end_s.permute((1, 0)), v0_s, gl.zeros([K, VH], gl.float32, acc_h), is_async=True)
    if HALVES == 2:
        update1 = warpgroup_mma(to_end_s.permute((1, 0)), v1_s, gl.zeros([K, VH], gl.float32, acc_h), is_async=True)
    scores = warpgroup_mma(q_scaled_s, key_s.permute((1, 0)), gl.zeros([BT, BT], gl.float32, acc64), is_async=True)

    # while they run: a, the chunk's decays, and which rows this launch stores (none for strong decay)
    T_store = gl.where(gl.min(chunk_decays, 0) < STRONG_DECAY, 0, T)
    if AUG:
        gl.store(aug_a + (i_b * T + t) * H + i_h, gl.sum(q_b * key * w[None, :], 1), mask=t < T_store)
    gl.store(decays + (i_bh * NT + n) * K + c, chunk_decays)
    if HALVES == 2:
        update0, update1, scores = warpgroup_mma_wait(0, deps=[update0, update1, scores])
    else:
        update0, scores = warpgroup_mma_wait(0, deps=[update0, scores])
    r64 = gl.arange(0, BT, layout=gl.SliceLayout(1, acc64))
    c64 = gl.arange(0, BT, layout=gl.SliceLayout(0, acc64))
    scores_s = gl.allocate_shared_memory(
        gl.bfloat16, [BT, BT], tok_t, gl.where(r64[:, None] >= c64[None, :], scores, 0.0).to(gl.bfloat16)
    )
    row_decays = gl.convert_layout(chunk_decays, gl.SliceLayout(1, acc_h))

    # the chain: wait for hₙ, publish hₙ₊₁ = e^G_last ⊙ hₙ + Uₙ (metala_core_chained_kernels' helpers' protocol)
    if n > 0:
        while gl.atomic_add(flags + (n - 1) * BH + i_bh, 0, sem="acquire") == 0:
            pass
    args = (carried, flags, states, out, scores_s, q_start_s, row_decays, scale, first, n, NT, BH, i_bh, i_h, T_store)
    _chain_and_output(*args, update0, v0_s, 0, HALVES == 1, H, VH, acc_h, tok_h, ld, VIA_SMEM)
    if HALVES == 2:
        _chain_and_output(*args, update1, v1_s, VH, True, H, VH, acc_h, tok_h, ld, VIA_SMEM)


@gluon.jit
def _chain_and_output(
    carried, flags, states, out, scores_s, q_start_s, row_decays, scale, first, n, NT, BH, i_bh, i_h, T_store, update,
    v_s, col, RELEASE: gl.constexpr, H: gl.constexpr, VH: gl.constexpr, acc_h: gl.constexpr, tok_h: gl.constexpr,
    ld: gl.constexpr, VIA_SMEM: gl.constexpr,
):  # fmt: skip
    """Columns [col, col + VH) of the chain's step and of the output, after the wait: hₙ loaded, hₙ₊₁ published
    (the flag released if RELEASE), hₙ stored in bf16, o = scale [A v + (q ⊙ e^G) hₙ] stored."""
    BT: gl.constexpr = 64
    K: gl.constexpr = 64
    V: gl.constexpr = 128
    k_rows = gl.arange(0, K, layout=gl.SliceLayout(1, acc_h))
    v_cols = gl.arange(0, VH, layout=gl.SliceLayout(0, acc_h))
    state_tile = k_rows[:, None] * V + col + v_cols[None, :]
    slot = carried + (i_bh * 2 + n % 2).to(gl.int64) * (K * V)
    # .cg: from the L2, past this SM's L1, which may hold the slot as it was two chunks ago
    state = gl.load(slot + state_tile, mask=(k_rows < K)[:, None] & (n > 0), other=0.0, cache_modifier=".cg")
    if n + 1 < NT:
        next_slot = carried + (i_bh * 2 + (n + 1) % 2).to(gl.int64) * (K * V)
        gl.store(next_slot + state_tile, row_decays[:, None] * state + update, cache_modifier=".cg")
        if RELEASE:
            gl.thread_barrier()  # every thread's part stored before the flag (as CUTLASS's semaphore)
            gl.atomic_xchg(flags + n * BH + i_bh, 1, sem="release")
    state_s = gl.allocate_shared_memory(gl.bfloat16, [K, VH], tok_h, state.to(gl.bfloat16))
    states_base = states + (i_bh * NT + n).to(gl.int64) * (K * V) + col
    ld_rows = gl.arange(0, BT, layout=gl.SliceLayout(1, ld))
    ld_cols = gl.arange(0, VH, layout=gl.SliceLayout(0, ld))
    if VIA_SMEM:
        gl.store(states_base + ld_rows[:, None] * V + ld_cols[None, :], state_s.load(ld))
    else:
        gl.store(states_base + k_rows[:, None] * V + v_cols[None, :], state.to(gl.bfloat16))
    fence_async_shared()
    # o = scale [A v + (q ⊙ e^G) hₙ]
    o = warpgroup_mma(scores_s, v_s, gl.zeros([BT, VH], gl.float32, acc_h), is_async=True)
    o = warpgroup_mma(q_start_s, state_s, o, is_async=True)
    o = warpgroup_mma_wait(0, deps=[o])
    if VIA_SMEM:
        o_s = gl.allocate_shared_memory(gl.bfloat16, [BT, VH], tok_h, (scale * o).to(gl.bfloat16))
        o_ptrs = out + (first + ld_rows[:, None]) * (H * V) + i_h * V + col + ld_cols[None, :]
        gl.store(o_ptrs, o_s.load(ld), mask=((n * BT + ld_rows) < T_store)[:, None])
    else:
        r_o = gl.arange(0, BT, layout=gl.SliceLayout(1, acc_h))
        o_ptrs = out + (first + r_o[:, None]) * (H * V) + i_h * V + col + v_cols[None, :]
        gl.store(o_ptrs, (scale * o).to(out.dtype.element_ty), mask=((n * BT + r_o) < T_store)[:, None])


VARIANTS = {  # name: (HALVES, VIA_SMEM, maxnreg)
    "as shipped in session 50's call 1 (168)": (1, False, 168),
    "uncapped": (1, False, None),
    "via shared memory (168)": (1, True, 168),
    "halves (168)": (2, False, 168),
    "halves (128)": (2, False, 128),
    "halves, via shared memory (168)": (2, True, 168),
    "halves, via shared memory (128)": (2, True, 128),
}


def build_sm90():
    """Each variant's sm90 build on a CPU (bench/gluon_build.py's)."""
    import gluon_build

    pointers = ["q", "gate_logits", "v", "states", "decays", "out", "aug_w", "aug_a", "carried", "flags"]
    for name, (halves, via_smem, cap) in VARIANTS.items():
        constants = {"H": 16, "AUG": True, "HALVES": halves, "VIA_SMEM": via_smem}
        print(
            f"{name}: {gluon_build.summary(gluon_build.compile_sm90(chained_forward_kernel, pointers, constants, cap))}"
        )


def run_gpu(B=32, T=2048, H=16, scale=0.125, normalizer=16.0, device="cuda"):
    """The block's shape: the shipped chained launch (metala_core_chains.chained, the Triton kernel) and each variant
    on the same inputs (views of one projection, as the model's, with self-augmentation's a), compared with the
    shipped results, then each timed by triton.testing.do_bench (its buffers allocated in the timed call, as the
    shipped launch allocates its own)."""
    import torch

    from neox_metala.ops import metala_core_chains, metala_core_inputs, metala_core_triton

    K, V = 64, 128
    gen = torch.Generator(device=device).manual_seed(0)
    proj = torch.randn(B, T, H * (2 * K + 2 * V), device=device, generator=gen).bfloat16()
    q, logits, v = (proj[..., a:b].unflatten(-1, (H, -1)) for a, b in ((0, H * K), (H * K, 2 * H * K),
                                                                       (2 * H * K, 2 * H * K + H * V)))  # fmt: skip
    logits = logits.float().mul(2).add(2).bfloat16()  # mild decays: no chunk of strong decay
    proj[..., H * K : 2 * H * K] = logits.flatten(-2)
    logits = proj[..., H * K : 2 * H * K].unflatten(-1, (H, -1))
    w = torch.randn(H * K, device=device, generator=gen) * 0.5
    _, _, _, strides = metala_core_triton._inputs(q, logits, v)
    sizes, batch_heads = metala_core_triton._sizes(q, v, 64)

    def shipped():
        out, a = torch.empty_like(v), torch.empty(B, T, H, device=device)
        states, decays = metala_core_chains.chained(q, logits, v, scale, normalizer, strides, sizes, batch_heads,
                                                    out, (a, w))  # fmt: skip
        return out, states, decays, a

    def gluon(halves, via_smem, cap):
        out, a = torch.empty_like(v), torch.empty(B, T, H, device=device)
        states, decays = metala_core_inputs.scan_buffers(q, sizes, batch_heads)
        carried, flags = metala_core_chains._chain_buffers(q, sizes, batch_heads)
        chained_forward_kernel[(sizes["NT"] * batch_heads,)](
            q, logits, v, states, decays, out, w, a, carried, flags, scale, strides["stride_q"], strides["stride_g"],
            strides["stride_v"], normalizer, T, sizes["NT"], batch_heads, H=H, AUG=True, HALVES=halves,
            VIA_SMEM=via_smem, num_warps=4, **({"maxnreg": cap} if cap else {}),
        )  # fmt: skip
        return out, states, decays, a

    want = shipped()
    if "--ncu" in sys.argv:  # warmed up (the shipped launch autotuned), then one launch of each between Start and Stop
        variants = [lambda variant=variant: gluon(*variant) for variant in VARIANTS.values()]
        for run in variants:
            run()
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStart()
        for run in (shipped, *variants):
            run()
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStop()
        return
    relative = lambda x, y: ((x.double() - y.double()).norm() / y.double().norm()).item()  # noqa: E731
    runs = {"shipped (Triton, autotuned)": shipped}
    runs.update({name: (lambda variant=variant: gluon(*variant)) for name, variant in VARIANTS.items()})
    for round_ in range(2):
        for name, run in runs.items():
            if device == "cpu" and not name.startswith("shipped"):  # --dry: the interpreter runs no Gluon
                continue
            try:
                got = run()
                torch.cuda.synchronize() if device == "cuda" else None
            except Exception as error:  # noqa: BLE001 -- the others still run
                print(f"{name}: failed {str(error)[:300]}", flush=True)
                continue
            errors = ", ".join(f"{part} {relative(g, e):.1e}" for part, g, e in
                               zip(("out", "states", "decays", "a"), got, want))  # fmt: skip
            us = triton.testing.do_bench(run, warmup=25, rep=200) * 1e3 if device == "cuda" else 0.0
            print(f"round {round_}: {name}: {us:.1f} us per launch (with its buffers); against shipped: {errors}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    if "--build" in sys.argv:
        build_sm90()
    elif "--dry" in sys.argv:  # TRITON_INTERPRET=1 on a CPU: the set-up and the shipped launch, small
        run_gpu(B=1, T=130, H=2, device="cpu")
    else:
        run_gpu()
