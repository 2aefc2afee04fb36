"""Probe: the qk-gradient kernel's loads and five products (dA = do vᵀ masked, dq = dA k + do hᵀ,
dk = dAᵀ q + v dhᵀ; no decay terms) as (a) a Triton program per chunk, 4 warps, as the shipped kernel is launched,
and (b) a Gluon persistent kernel whose chunks' tiles come by TMA into a ring of shared-memory stages (a 1-warp
loader partition with gl.warp_specialize, or the compute warps issuing the next chunk's copies themselves), the
products by wgmma from shared memory. On a GPU: checks both against torch and times them; on a CPU: builds (b) for sm90.
"""

import sys

import torch
import triton
import triton.language as tl
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

BT, K, V = 64, 64, 128


@triton.jit
def triton_kernel(q, k, v, do, h, dh, dq, dk, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr):
    c = tl.program_id(0).to(tl.int64)
    t = tl.arange(0, BT)
    ck, cv = tl.arange(0, K), tl.arange(0, V)
    tok_k = (c * BT + t)[:, None] * K + ck[None, :]
    tok_v = (c * BT + t)[:, None] * V + cv[None, :]
    st = c * K * V + ck[:, None] * V + cv[None, :]
    q_t, k_t = tl.load(q + tok_k), tl.load(k + tok_k)
    v_t, do_t = tl.load(v + tok_v), tl.load(do + tok_v)
    h_t, dh_t = tl.load(h + st), tl.load(dh + st)
    d_scores = tl.dot(do_t, tl.trans(v_t))
    d_scores = tl.where(t[:, None] >= t[None, :], d_scores, 0.0).to(q_t.dtype)
    dq_t = tl.dot(d_scores, k_t, tl.dot(do_t, tl.trans(h_t)))
    dk_t = tl.dot(tl.trans(d_scores), q_t, tl.dot(v_t, tl.trans(dh_t)))
    tl.store(dq + tok_k, dq_t.to(dq.dtype.element_ty))
    tl.store(dk + tok_k, dk_t.to(dk.dtype.element_ty))


@gluon.jit
def _issue(descs, bufs, bar, chunk, BT: gl.constexpr, K: gl.constexpr):
    """TMA copies of one chunk's six tiles into one stage, completing on `bar`."""
    q_d, k_d, v_d, do_d, h_d, dh_d = descs
    q_s, k_s, v_s, do_s, h_s, dh_s = bufs
    nbytes: gl.constexpr = 2 * BT * K * 2 + 2 * BT * 128 * 2 + 2 * K * 128 * 2
    mbarrier.expect(bar, nbytes)
    tma.async_copy_global_to_shared(q_d, [chunk * BT, 0], bar, q_s)
    tma.async_copy_global_to_shared(k_d, [chunk * BT, 0], bar, k_s)
    tma.async_copy_global_to_shared(v_d, [chunk * BT, 0], bar, v_s)
    tma.async_copy_global_to_shared(do_d, [chunk * BT, 0], bar, do_s)
    tma.async_copy_global_to_shared(h_d, [chunk * K, 0], bar, h_s)
    tma.async_copy_global_to_shared(dh_d, [chunk * K, 0], bar, dh_s)


@gluon.jit
def _stage(ring, s):
    return (ring[0].index(s), ring[1].index(s), ring[2].index(s), ring[3].index(s), ring[4].index(s), ring[5].index(s))


@gluon.jit
def _compute(
    ring,
    ready,
    empty,
    ds_s,
    dq,
    dk,
    chunks,
    STAGES: gl.constexpr,
    BT: gl.constexpr,
    K: gl.constexpr,
    SELF_ISSUE: gl.constexpr,
    descs,
):
    """The chunks of this program: wait for a stage, five wgmma products, release the stage, store dq and dk."""
    mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    rows = gl.arange(0, BT, layout=gl.SliceLayout(1, mma))
    cols = gl.arange(0, K, layout=gl.SliceLayout(0, mma))
    pid, programs = gl.program_id(0), gl.num_programs(0)
    n = gl.cdiv(chunks - pid, programs)
    if SELF_ISSUE:  # the first STAGES - 1 chunks' copies
        for j in gl.static_range(STAGES - 1):
            if j < n:
                _issue(descs, _stage(ring, j), ready.index(j), pid + j * programs, BT, K)
    for i in range(n):
        chunk = pid + i * programs
        s = i % STAGES
        if SELF_ISSUE:
            nxt = i + STAGES - 1
            if nxt < n:
                _issue(descs, _stage(ring, nxt % STAGES), ready.index(nxt % STAGES), pid + nxt * programs, BT, K)
        mbarrier.wait(ready.index(s), (i // STAGES) & 1)
        q_s, k_s, v_s, do_s, h_s, dh_s = _stage(ring, s)
        zero = gl.zeros([BT, K], gl.float32, mma)
        d_scores = warpgroup_mma(do_s, v_s.permute((1, 0)), zero, is_async=True)
        dq_acc = warpgroup_mma(do_s, h_s.permute((1, 0)), zero, is_async=True)
        dk_acc = warpgroup_mma(v_s, dh_s.permute((1, 0)), zero, is_async=True)
        d_scores = warpgroup_mma_wait(2, deps=[d_scores])
        d_scores = gl.where(rows[:, None] >= cols[None, :], d_scores, 0.0).to(gl.bfloat16)
        ds_s.store(d_scores)
        fence_async_shared()
        dq_acc = warpgroup_mma(ds_s, k_s, dq_acc, is_async=True)
        dk_acc = warpgroup_mma(ds_s.permute((1, 0)), q_s, dk_acc, is_async=True)
        dq_acc, dk_acc = warpgroup_mma_wait(0, deps=[dq_acc, dk_acc])
        if not SELF_ISSUE:
            mbarrier.arrive(empty.index(s), count=1)
        offsets = (chunk * BT + rows)[:, None].to(gl.int64) * K + cols[None, :]
        gl.store(dq + offsets, dq_acc.to(gl.bfloat16))
        gl.store(dk + offsets, dk_acc.to(gl.bfloat16))


@gluon.jit
def _loader(descs, ring, ready, empty, chunks, STAGES: gl.constexpr, BT: gl.constexpr, K: gl.constexpr):
    pid, programs = gl.program_id(0), gl.num_programs(0)
    n = gl.cdiv(chunks - pid, programs)
    for i in range(n):
        s = i % STAGES
        mbarrier.wait(empty.index(s), ((i // STAGES) & 1) ^ 1)
        _issue(descs, _stage(ring, s), ready.index(s), pid + i * programs, BT, K)


@gluon.jit
def gluon_kernel(q, k, v, do, h, dh, dq, dk, chunks, STAGES: gl.constexpr, WARP_SPECIALIZE: gl.constexpr):
    BT: gl.constexpr = 64
    K: gl.constexpr = 64
    V: gl.constexpr = 128
    tok_k: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, K], gl.bfloat16)
    tok_v: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, V], gl.bfloat16)
    st: gl.constexpr = gl.NVMMASharedLayout.get_default_for([K, V], gl.bfloat16)
    rows = chunks * BT
    descs = (
        tma.make_tensor_descriptor(q, [rows, K], [K, 1], [BT, K], tok_k),
        tma.make_tensor_descriptor(k, [rows, K], [K, 1], [BT, K], tok_k),
        tma.make_tensor_descriptor(v, [rows, V], [V, 1], [BT, V], tok_v),
        tma.make_tensor_descriptor(do, [rows, V], [V, 1], [BT, V], tok_v),
        tma.make_tensor_descriptor(h, [chunks * K, V], [V, 1], [K, V], st),
        tma.make_tensor_descriptor(dh, [chunks * K, V], [V, 1], [K, V], st),
    )
    ring = (
        gl.allocate_shared_memory(gl.bfloat16, [STAGES, BT, K], tok_k),
        gl.allocate_shared_memory(gl.bfloat16, [STAGES, BT, K], tok_k),
        gl.allocate_shared_memory(gl.bfloat16, [STAGES, BT, V], tok_v),
        gl.allocate_shared_memory(gl.bfloat16, [STAGES, BT, V], tok_v),
        gl.allocate_shared_memory(gl.bfloat16, [STAGES, K, V], st),
        gl.allocate_shared_memory(gl.bfloat16, [STAGES, K, V], st),
    )
    ds_s = gl.allocate_shared_memory(gl.bfloat16, [BT, BT], tok_k)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(STAGES):
        mbarrier.init(ready.index(s), count=1)
        mbarrier.init(empty.index(s), count=1)
    if WARP_SPECIALIZE:
        gl.warp_specialize(
            [
                (_compute, (ring, ready, empty, ds_s, dq, dk, chunks, STAGES, BT, K, False, descs)),
                (_loader, (descs, ring, ready, empty, chunks, STAGES, BT, K)),
            ],
            [1],
            [24],
        )
    else:
        _compute(ring, ready, empty, ds_s, dq, dk, chunks, STAGES, BT, K, True, descs)


def build_sm90():
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    names = gluon_kernel.arg_names
    signature = {name: "*bf16" for name in names[:8]}
    signature.update({"chunks": "i32", "STAGES": "constexpr", "WARP_SPECIALIZE": "constexpr"})
    for stages, ws in ((2, False), (2, True), (1, True)):
        source = GluonASTSource(
            fn=gluon_kernel, signature=signature, constexprs={(9,): stages, (10,): ws},
            attrs={(i,): [["tt.divisibility", 16]] for i in range(8)},
        )  # fmt: skip
        build = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
        ptx = build.asm["ptx"]
        print(
            f"stages {stages} warp_specialize {ws}: wgmma {ptx.count('wgmma.mma_async')}, "
            f"TMA {ptx.count('cp.async.bulk.tensor')}, setmaxnreg {ptx.count('setmaxnreg')}, "
            f"shared {build.metadata.shared} B, warps {build.metadata.num_warps}"
        )


def run_gpu(chunks=16384):
    gen = torch.Generator(device="cuda").manual_seed(0)
    tok = lambda d: torch.randn(chunks * BT, d, device="cuda", generator=gen, dtype=torch.bfloat16)  # noqa: E731
    q, k, v, do = tok(K), tok(K), tok(V), tok(V)
    h, dh = (torch.randn(chunks * K, V, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(2))
    triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device="cuda"))
    # fp32 reference of the first chunks
    c = 64
    qc, kc, vc, doc = (x[: c * BT].float().view(c, BT, -1) for x in (q, k, v, do))
    hc, dhc = (x[: c * K].float().view(c, K, V) for x in (h, dh))
    ds = torch.tril(doc @ vc.transpose(1, 2))
    dq_ref = ds.bfloat16().float() @ kc + doc @ hc.transpose(1, 2)
    dk_ref = ds.bfloat16().float().transpose(1, 2) @ qc + vc @ dhc.transpose(1, 2)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    runs = {
        "triton, a program per chunk, 4 warps": lambda dq, dk: triton_kernel[(chunks,)](
            q, k, v, do, h, dh, dq, dk, K, V, BT, num_warps=4
        )
    }
    # 2 stages: 172 KB of shared memory, one program per SM; 1 stage: two per SM
    for stages, ws, per_sm in ((2, False, 1), (2, True, 1), (1, True, 2)):
        runs[f"gluon persistent, {stages} stage(s), warp_specialize {ws}, {per_sm} per SM"] = (
            lambda dq, dk, s=stages, w=ws, p=per_sm: gluon_kernel[(p * sms,)](
                q, k, v, do, h, dh, dq, dk, chunks, s, w, num_warps=4
            )
        )
    floor = (4 * BT * K + 2 * BT * V + 2 * K * V) * 2 * chunks / 4.0e12 * 1e3  # ms at ~4 TB/s
    print(f"{chunks} chunks; the bytes' time at 4 TB/s {floor:.3f} ms", flush=True)
    for name, run in runs.items():
        dq, dk = torch.empty_like(q), torch.empty_like(q)
        try:
            run(dq, dk)
            torch.cuda.synchronize()
        except Exception as error:  # noqa: BLE001
            print(f"{name}: failed {str(error)[:300]}", flush=True)
            continue
        err = max(  # relative to the largest entry (the outputs are rounded to bf16: ~4e-3)
            ((dq[: c * BT].float().view(c, BT, K) - dq_ref).abs().max() / dq_ref.abs().max()).item(),
            ((dk[: c * BT].float().view(c, BT, K) - dk_ref).abs().max() / dk_ref.abs().max()).item(),
        )
        ms = triton.testing.do_bench(lambda run=run, dq=dq, dk=dk: run(dq, dk), warmup=50, rep=300)
        print(f"{name}: {ms:.3f} ms ({ms / floor:.2f}x the bytes' time), max relative error {err:.3g}", flush=True)


if __name__ == "__main__":
    build_sm90() if "--build" in sys.argv else run_gpu()
