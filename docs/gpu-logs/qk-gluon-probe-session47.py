"""(Session 48: its cp.async build is now neox_metala/ops/metala_core_gluon_kernels.py; this file is the record of
what session 48's calls 1-2 ran, docs/benchmarks.md.)

Session 47's probe: the qk-gradient kernel (`metala_core_grad_kernels.chunk_grads_kernel`) as the model launches
it (factorised chunks, K_SPLIT 2: 32 channels per program, 4 warps, the stored decay rows, self-augmentation's terms
written, not added), in Gluon with every layout chosen: the decay terms, dq and d logits live in the wgmma
accumulator's layout from their loads to their stores (the shipped build's ~40 barriers are mostly Triton's layout
changes between the loads' layout, the products' and the elementwise steps'), the five products run as async wgmma
while the decay terms' exponentials are formed, and the suffix sums are the shipped kernel's two tf32 products.

    python docs/gpu-logs/qk-gluon-probe-session47.py --build [--async] [--maxnreg 168] [-v]   # a CPU: its sm90 build
    python docs/gpu-logs/qk-gluon-probe-session47.py            # a GPU: against the shipped kernel, then both timed
    TRITON_INTERPRET=1 python docs/gpu-logs/qk-gluon-probe-session47.py --twin   # the twin against the shipped math
    TRITON_INTERPRET=1 python docs/gpu-logs/qk-gluon-probe-session47.py --dry    # the GPU run's set-up, small, no Gluon

On a GPU (from the repository root): the shipped backward's own inputs at the block's shape (B32 T2048 H16 K64 V128
bf16, one batch slice of B16 as the block's backward takes it): the forward's kept states, the chained backward's state
gradients, the decay rows and decays; the shipped factorised launch and this kernel (also capped at 168 registers:
three programs per SM) each into dq / d logits of their own, compared with the shipped backward's (which ran the same
shipped kernel) and with the twin in its bf16 roundings (`twin`), every chunk of factorised decay (mild logits), then
each timed by triton.testing.do_bench (the L2 cleared before every run).
"""

import math
import os
import re
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
from neox_metala.ops import metala_core  # noqa: E402

STRONG_DECAY = math.exp(-metala_core.FACTORISED_RANGE)


@gluon.jit
def _exp(x):
    """e^x as libdevice's fast_expf: ex2.approx of x · log2 e."""
    return gl.exp2(x * 1.4426950408889634)


@gluon.jit
def _neg_expm1(g):
    series = g * (1.0 + g * (0.5 + g * (1.0 / 6.0 + g * (1.0 / 24.0 + g * (1.0 / 120.0)))))
    return -gl.where(g > -0.1, series, _exp(g) - 1.0)


@gluon.jit
def qk_grads_gluon(
    q, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, aug_da, aug_w, scale, stride_q, stride_v,
    stride_dq, stride_dg, normalizer, T, NT, H: gl.constexpr, DOUBLINGS: gl.constexpr, STRONG: gl.constexpr,
    ASYNC: gl.constexpr = False,
):  # fmt: skip
    """dq and d gate logits of channels [32 i_k, 32 i_k + 32) of chunk n, grid (N · 2, B·H): program_id(0) = 2 n + i_k,
    as the shipped factorised launch."""
    BT: gl.constexpr = 64
    K: gl.constexpr = 64
    V: gl.constexpr = 128
    KS: gl.constexpr = 32
    pid, i_bh = gl.program_id(0), gl.program_id(1)
    i_k, n = pid % 2, pid // 2
    i_b, i_h = i_bh // H, i_bh % H
    k_col = i_k * KS

    # 16-byte loads of the V loop's tiles; the products' accumulators; their operands' shared layouts
    ld: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
    acc64: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    acc32: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 32, 16])
    acc_tf32: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 32, 8])
    upper_op: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=acc_tf32, k_width=1)
    tok_v: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, V], gl.bfloat16)
    st_v: gl.constexpr = gl.NVMMASharedLayout.get_default_for([KS, V], gl.bfloat16)
    tok_t: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, BT], gl.bfloat16)
    tok_k: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, KS], gl.bfloat16)
    sums_sl: gl.constexpr = gl.NVMMASharedLayout.get_default_for([KS, BT], gl.float32)

    # the V loop's tiles: v, do (BT, V), h, dh (KS, V) of this program's channels, through registers into shared memory
    rows = gl.arange(0, BT, layout=gl.SliceLayout(1, ld))
    cols = gl.arange(0, V, layout=gl.SliceLayout(0, ld))
    inside = ((n * BT + rows) < T)[:, None]
    first = (i_b * T + n * BT).to(gl.int64)
    v_ptrs = v + first * stride_v + i_h * V + rows[:, None] * stride_v + cols[None, :]
    do_ptrs = d_out + first * (H * V) + i_h * V + rows[:, None] * (H * V) + cols[None, :]
    s_rows = gl.arange(0, KS, layout=gl.SliceLayout(1, ld))
    s_base = ((i_bh * NT + n).to(gl.int64) * K + k_col) * V
    h_ptrs = states + s_base + s_rows[:, None] * V + cols[None, :]
    dh_ptrs = state_grads + s_base + s_rows[:, None] * V + cols[None, :]
    if ASYNC:  # straight into shared memory (cp.async), no round trip through registers
        v_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v)
        do_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v)
        h_s = gl.allocate_shared_memory(gl.bfloat16, [KS, V], st_v)
        dh_s = gl.allocate_shared_memory(gl.bfloat16, [KS, V], st_v)
        full = inside & (cols < V)[None, :]
        async_copy.async_copy_global_to_shared(v_s, v_ptrs, mask=full)
        async_copy.async_copy_global_to_shared(do_s, do_ptrs, mask=full)
        async_copy.async_copy_global_to_shared(h_s, h_ptrs)
        async_copy.async_copy_global_to_shared(dh_s, dh_ptrs)
        async_copy.commit_group()
    else:
        v_b = gl.load(v_ptrs, mask=inside, other=0.0)
        do_b = gl.load(do_ptrs, mask=inside, other=0.0)
        h_b = gl.load(h_ptrs)
        dh_b = gl.load(dh_ptrs)
    # the decay terms' inputs, in the accumulators' layout, issued with the tiles' loads
    r = gl.arange(0, BT, layout=gl.SliceLayout(1, acc32))
    c = gl.arange(0, KS, layout=gl.SliceLayout(0, acc32))
    t = n * BT + r
    row_base = (i_bh * NT + n).to(gl.int64) * BT * K + k_col
    cum = gl.load(cums + row_base + r[:, None] * K + c[None, :])
    before = gl.load(cums + row_base - K + r[:, None] * K + c[None, :], mask=(r > 0)[:, None], other=0.0)
    cum_last = gl.load(cums + row_base + (BT - 1) * K + c)
    q_b = gl.load(
        q + first * stride_q + i_h * K + k_col + r[:, None] * stride_q + c[None, :], mask=(t < T)[:, None], other=0.0
    ).to(gl.float32)
    da = gl.load(aug_da + (i_b * T + t) * H + i_h, mask=t < T, other=0.0)
    w = gl.load(aug_w + i_h * K + k_col + c).to(gl.float32)
    all_cols = gl.arange(0, K, layout=gl.SliceLayout(0, acc32))
    chunk_decays = gl.load(decays + (i_bh * NT + n) * K + all_cols)
    if ASYNC:
        async_copy.wait_group(0)
        gl.thread_barrier()
        h_b, dh_b = h_s.load(ld), dh_s.load(ld)
    else:
        v_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v, v_b)
        do_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v, do_b)
        h_s = gl.allocate_shared_memory(gl.bfloat16, [KS, V], st_v, h_b)
        dh_s = gl.allocate_shared_memory(gl.bfloat16, [KS, V], st_v, dh_b)
    # Σ_j h ⊙ dh per channel
    state_dot_grad = gl.convert_layout(gl.sum(h_b.to(gl.float32) * dh_b.to(gl.float32), 1), gl.SliceLayout(0, acc32))
    fence_async_shared()
    d_scores = warpgroup_mma(do_s, v_s.permute((1, 0)), gl.zeros([BT, BT], gl.float32, acc64), is_async=True)
    dq_inter = warpgroup_mma(do_s, h_s.permute((1, 0)), gl.zeros([BT, KS], gl.float32, acc32), is_async=True)
    dk_inter = warpgroup_mma(v_s, dh_s.permute((1, 0)), gl.zeros([BT, KS], gl.float32, acc32), is_async=True)

    # the decay terms while the products run
    log_decay = cum - before
    key = _neg_expm1(log_decay)
    offset = cum - cum_last[None, :] * 0.5
    to_ref, from_ref, at_ref = _exp(offset), _exp(-offset), _exp(cum_last * 0.5)[None, :]
    key_s = gl.allocate_shared_memory(gl.bfloat16, [BT, KS], tok_k, (key * from_ref).to(gl.bfloat16))
    q_s = gl.allocate_shared_memory(gl.bfloat16, [BT, KS], tok_k, (q_b * to_ref).to(gl.bfloat16))
    upper = (
        gl.arange(0, BT, layout=gl.SliceLayout(1, upper_op))[:, None]
        <= gl.arange(0, BT, layout=gl.SliceLayout(0, upper_op))[None, :]
    )
    upper = upper.to(gl.float32)

    d_scores, dq_inter, dk_inter = warpgroup_mma_wait(0, deps=[d_scores, dq_inter, dk_inter])
    r64 = gl.arange(0, BT, layout=gl.SliceLayout(1, acc64))
    c64 = gl.arange(0, BT, layout=gl.SliceLayout(0, acc64))
    d_scores = gl.where(r64[:, None] >= c64[None, :], scale * d_scores, 0.0)
    ds_s = gl.allocate_shared_memory(gl.bfloat16, [BT, BT], tok_t, d_scores.to(gl.bfloat16))
    fence_async_shared()
    dk_inter = dk_inter * at_ref
    dq_acc = warpgroup_mma(ds_s, key_s, scale * dq_inter * at_ref, is_async=True)
    dk_acc = warpgroup_mma(ds_s.permute((1, 0)), q_s, dk_inter, is_async=True)
    dq_acc, dk_acc = warpgroup_mma_wait(0, deps=[dq_acc, dk_acc])
    dq_b = to_ref * dq_acc
    dk = from_ref * dk_acc
    dk_inter = from_ref * dk_inter
    # dG = q dq − k dk, and G_last's terms through h_n+1
    d_cum = q_b * dq_b - key * dk
    last_term = _exp(cum_last) * state_dot_grad + gl.sum(key * dk_inter, 0)
    d_cum = gl.where((r == BT - 1)[:, None], d_cum + last_term[None, :], d_cum)
    da_w = da[:, None] * w[None, :]  # self-augmentation, no term of dG
    dq_b += da_w * key
    dk += da_w * q_b
    # Σ_(s ≥ t) d_cum_s as two tf32 products with the upper triangle of ones (the shipped `_suffix_sums`)
    leading = (d_cum.to(gl.int32, bitcast=True) & -8192).to(gl.float32, bitcast=True)
    lead_s = gl.allocate_shared_memory(gl.float32, [KS, BT], sums_sl, gl.permute(leading, (1, 0)))
    rest_s = gl.allocate_shared_memory(gl.float32, [KS, BT], sums_sl, gl.permute(d_cum - leading, (1, 0)))
    fence_async_shared()
    sums = warpgroup_mma(upper, lead_s.permute((1, 0)), gl.zeros([BT, KS], gl.float32, acc_tf32))
    sums = warpgroup_mma(upper, rest_s.permute((1, 0)), sums)
    d_log_decay = gl.convert_layout(sums, acc32) - (1.0 - key) * dk
    power = 1.0 - key  # sigmoid(−x) = key · Π (1 + α^(2^i)) (the shipped `_sigmoid_neg`)
    product = 1.0 + power
    for _ in gl.static_range(DOUBLINGS - 1):
        power = power * power
        product += product * power
    d_gate_logits_b = d_log_decay * (key * product) * (1.0 / normalizer)

    strong = gl.min(chunk_decays, 0) < STRONG
    keep = (t < gl.where(strong, 0, T))[:, None]
    gl.store(dq + first * stride_dq + i_h * K + k_col + r[:, None] * stride_dq + c[None, :],
             dq_b.to(dq.dtype.element_ty), mask=keep)  # fmt: skip
    gl.store(d_gate_logits + first * stride_dg + i_h * K + k_col + r[:, None] * stride_dg + c[None, :],
             d_gate_logits_b.to(d_gate_logits.dtype.element_ty), mask=keep)  # fmt: skip


def decay_terms(gate_logits, normalizer, BT=64):
    """The decay rows (B·H, N·BT, K) fp32 G and the chunks' (B·H, N, K) e^G_last, as the shipped kernels form them."""
    import torch

    B, T, H, K = gate_logits.shape
    N = -(-T // BT)
    log_decay = torch.nn.functional.logsigmoid(gate_logits.float()) / normalizer
    log_decay = torch.nn.functional.pad(log_decay, (0, 0, 0, 0, 0, N * BT - T))
    cum = log_decay.view(B, N, BT, H, K).cumsum(2).permute(0, 3, 1, 2, 4).contiguous()  # (B, H, N, BT, K)
    return cum.view(B * H, N * BT, K), cum[:, :, :, -1].exp().reshape(B * H, N, K)


def twin(q, v, d_out, states, state_grads, cums, aug_da, aug_w, scale, normalizer, BT=64, bf16=False):
    """qk_grads_gluon's arithmetic in PyTorch (fp64, or with its bf16 roundings): dq, d gate logits (B, T, H, K)."""
    import torch

    B, T, H, K = q.shape
    N = -(-T // BT)
    f = torch.float64
    rnd = (lambda x: x.to(torch.bfloat16).to(f)) if bf16 else (lambda x: x)  # noqa: E731

    def chunks(x):  # (B, T, H, D) -> (B, H, N, BT, D)
        x = torch.nn.functional.pad(x.to(f), (0, 0, 0, 0, 0, N * BT - T))
        return x.view(B, N, BT, H, -1).permute(0, 3, 1, 2, 4)

    qc, vc, doc = chunks(q), chunks(v), chunks(d_out)
    h, dh = states.to(f), state_grads.to(f)
    cum = cums.to(f).view(B, H, N, BT, K)
    before = torch.nn.functional.pad(cum[..., :-1, :], (0, 0, 1, 0))
    log_decay, cum_last = cum - before, cum[..., -1:, :]
    key = -torch.expm1(log_decay)
    offset = cum - cum_last * 0.5
    to_ref, from_ref, at_ref = offset.exp(), (-offset).exp(), (cum_last * 0.5).exp()
    causal = torch.ones(BT, BT, dtype=torch.bool, device=doc.device).tril()
    d_scores = rnd(torch.where(causal, scale * doc @ vc.transpose(-1, -2), 0.0))
    dq_inter, dk_inter = doc @ h.transpose(-1, -2), vc @ dh.transpose(-1, -2)
    state_dot_grad = (h * dh).sum(-1)[..., None, :]
    dk_inter = dk_inter * at_ref
    dq_b = to_ref * (d_scores @ rnd(key * from_ref) + scale * dq_inter * at_ref)
    dk = from_ref * (d_scores.transpose(-1, -2) @ rnd(qc * to_ref) + dk_inter)
    dk_inter = from_ref * dk_inter
    d_cum = qc * dq_b - key * dk
    d_cum[..., -1:, :] += cum_last.exp() * state_dot_grad + (key * dk_inter).sum(-2, keepdim=True)
    da = chunks(aug_da[..., None])  # (B, H, N, BT, 1)
    da_w = da * aug_w.to(f).view(H, K)[None, :, None, None, :]
    dq_b, dk = dq_b + da_w * key, dk + da_w * qc
    sums = d_cum.flip(-2).cumsum(-2).flip(-2)
    alpha = 1.0 - key
    d_gate_logits = (sums - alpha * dk) * torch.sigmoid(-torch.logit(alpha**normalizer)) / normalizer
    back = lambda x: x.permute(0, 2, 3, 1, 4).reshape(B, N * BT, H, K)[:, :T]  # noqa: E731
    return back(dq_b), back(d_gate_logits)


def draw(B, T, H, dtype, device, K=64, V=128, seed=0):
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen, device=device)  # noqa: E731
    q, v, d_out = rand(B, T, H, K).to(dtype), rand(B, T, H, V).to(dtype), rand(B, T, H, V).to(dtype)
    gate_logits = (rand(B, T, H, K) + 2.0).to(dtype)  # mild decays: every chunk factorised
    return q, gate_logits, v, d_out, rand(B, T, H), rand(H * K) * 0.1


def check_twin():
    """CPU (TRITON_INTERPRET=1): the twin in fp64 against the shipped backward's dq and d gate logits (fp32)."""
    import torch

    from neox_metala.ops import metala_core_triton as core

    B, T, H, scale, normalizer = 2, 130, 2, 0.125, 16.0
    q, gate_logits, v, d_out, da, w = draw(B, T, H, torch.float32, "cpu")
    states = core.chunk_states(q, gate_logits, v, normalizer)
    state_grads = core.chunk_state_grads(q, gate_logits, d_out, scale, normalizer)
    cums, _ = decay_terms(gate_logits, normalizer)
    dq, dg, _ = core.metala_core_bwd(q, gate_logits, v, scale, normalizer, d_out, states=states, augmentation=(da, w))
    dq_t, dg_t = twin(q, v, d_out, states, state_grads, cums, da, w, scale, normalizer)
    for name, mine, theirs in (("dq", dq_t, dq), ("d gate logits", dg_t, dg)):
        err = ((mine - theirs.double()).norm() / theirs.double().norm()).item()
        print(f"twin against the shipped backward: {name} norm-relative {err:.2e}")


def build_sm90():
    import core_build
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    names = qk_grads_gluon.arg_names
    fp32 = {"decays", "cums", "aug_da", "aug_w"}
    pointers = names[:11]
    signature = {name: "*fp32" if name in fp32 else "*bf16" for name in pointers}
    signature.update(dict.fromkeys(("scale", "normalizer"), "fp32"))
    signature.update(dict.fromkeys(("stride_q", "stride_v", "stride_dq", "stride_dg", "T", "NT"), "i32"))
    signature.update(dict.fromkeys(("H", "DOUBLINGS", "STRONG", "ASYNC"), "constexpr"))
    signature = {name: signature[name] for name in names}
    index = names.index
    constexprs = {(index("H"),): 16, (index("DOUBLINGS"),): 4, (index("STRONG"),): STRONG_DECAY}
    constexprs[(index("ASYNC"),)] = "--async" in sys.argv
    aligned = [*pointers, "stride_q", "stride_v", "stride_dq", "stride_dg"]
    source = GluonASTSource(
        fn=qk_grads_gluon, signature=signature, constexprs=constexprs,
        attrs={(index(name),): [["tt.divisibility", 16]] for name in aligned},
    )  # fmt: skip
    cap = int(sys.argv[sys.argv.index("--maxnreg") + 1]) if "--maxnreg" in sys.argv else None
    build = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "maxnreg": cap})
    cubin = build.asm["cubin"]
    sass = core_build.cuobjdump(cubin, "-sass")
    lines = [line for line in sass.splitlines() if re.match(r"\s+/\*[0-9a-f]{4,}\*/", line)]
    count = lambda op: sum(1 for line in lines if re.search(rf"\s{op}\b", line))  # noqa: E731
    print(
        f"{core_build.resource_usage(cubin)}, {len(lines)} instructions, BAR {count('BAR.SYNC')}, "
        f"HGMMA {count('HGMMA')}, MUFU {count('MUFU')}, LDG {count('LDG')}, STG {count('STG')}, "
        f"shared {build.metadata.shared} B"
    )
    if "-v" in sys.argv:
        import core_sass

        print(core_sass.runs(lines))


def run_gpu(B=16, T=2048, H=16, scale=0.125, normalizer=16.0, device="cuda"):
    """The block's batch slice: the Gluon kernel against the shipped backward and the twin, then both kernels timed."""
    import torch

    from neox_metala.ops import metala_core_triton as core
    from neox_metala.ops.triton_launch import launch

    K, BT = 64, 64
    N = -(-T // BT)
    q, gate_logits, v, d_out, da, w = draw(B, T, H, torch.bfloat16 if device == "cuda" else torch.float32, device)
    proj = torch.cat([x.flatten(-2) for x in (q, gate_logits, v, v)], -1)  # views of one projection, as the model's
    q, gate_logits, v = (proj[..., a:b].unflatten(-1, (H, -1)) for a, b in ((0, 1024), (1024, 2048), (2048, 4096)))
    states = core.metala_core_fwd(q, gate_logits, v, scale, normalizer, keep_states=True)[1]
    state_grads = core.chunk_state_grads(q, gate_logits, d_out, scale, normalizer)
    cums, decays = decay_terms(gate_logits, normalizer)
    print(f"B{B} T{T} H{H}: strong chunks {(decays.amin(-1) < STRONG_DECAY).sum().item()}", flush=True)
    dq_ref, dg_ref, _ = core.metala_core_bwd(
        q, gate_logits, v, scale, normalizer, d_out, states=states, augmentation=(da, w)
    )
    try:
        dq_twin, dg_twin = twin(q, v, d_out, states, state_grads, cums, da, w, scale, normalizer, bf16=True)
    except Exception as error:  # noqa: BLE001 -- the kernels are still compared with the shipped backward
        print(f"twin failed: {str(error)[:400]}", flush=True)
        dq_twin, dg_twin = dq_ref, dg_ref

    def gluon(dq, dg, **options):
        qk_grads_gluon[(N * 2, B * H)](
            q, v, d_out, states, state_grads, decays, cums, dq, dg, da, w, scale, q.stride(1), v.stride(1),
            dq.stride(1), dg.stride(1), normalizer, T, N, H=H, DOUBLINGS=4, STRONG=STRONG_DECAY, num_warps=4,
            **options,
        )  # fmt: skip

    sizes, batch_heads = core._sizes(q, v, BT)
    _, _, _, strides = core._inputs(q, gate_logits, v)
    kwargs = dict(**strides, stride_dq=H * K, stride_dg=H * K, normalizer=normalizer, **sizes, BK=K,
                  BF16=q.dtype == torch.bfloat16, ACCUMULATE=True, STORED=True, AUG=True, DOUBLINGS=4,
                  FACTORISED=True)  # fmt: skip

    def shipped(dq, dg):
        grid = lambda meta: (N * meta.get("K_SPLIT", 1), batch_heads, 1)  # noqa: E731
        launch(core._kernels()["chunk_qk_grads"], grid, q, gate_logits, v, d_out, states, state_grads, decays, cums,
               dq, dg, da, w, scale, **kwargs)  # fmt: skip

    relative = lambda a, b: ((a.double() - b.double()).norm() / b.double().norm()).item()  # noqa: E731
    runs = {
        "shipped (autotuned)": shipped,
        "gluon": gluon,
        "gluon, 168 registers": lambda dq, dg: gluon(dq, dg, maxnreg=168),
        "gluon, cp.async": lambda dq, dg: gluon(dq, dg, ASYNC=True),
    }
    for name, run in runs.items():
        dq, dg = torch.empty(B, T, H, K, device=device, dtype=q.dtype), torch.empty(B, T, H, K, device=device)
        if device == "cpu" and name != "shipped (autotuned)":  # --dry: the interpreter runs no Gluon
            continue
        try:
            run(dq, dg)
            torch.cuda.synchronize() if device == "cuda" else None
        except Exception as error:  # noqa: BLE001
            print(f"{name}: failed {str(error)[:400]}", flush=True)
            continue
        errors = (f"dq {relative(dq, dq_ref):.2e} / {relative(dq, dq_twin):.2e}, "
                  f"d logits {relative(dg, dg_ref):.2e} / {relative(dg, dg_twin):.2e}")  # fmt: skip
        ms = (
            triton.testing.do_bench(lambda run=run, dq=dq, dg=dg: run(dq, dg), warmup=25, rep=200)
            if device == "cuda"
            else 0
        )
        print(f"{name}: {ms * 1e3:.1f} us per launch; norm-relative error against the shipped backward / the twin: "
              f"{errors}", flush=True)  # fmt: skip


if __name__ == "__main__":
    if "--build" in sys.argv:
        build_sm90()
    elif "--twin" in sys.argv:
        check_twin()
    elif "--dry" in sys.argv:  # TRITON_INTERPRET=1 on a CPU: the GPU run's set-up and the shipped kernel, small
        run_gpu(B=1, T=130, device="cpu")
    else:
        run_gpu()
