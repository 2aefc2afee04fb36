"""Session 44, on the CPU (Triton 3.6, sm90 builds, no GPU): does tl.range(warp_specialize=True) specialise a loop
whose body is shaped like the qk-gradient kernel's (TMA descriptor loads, logsigmoid, a cumsum, three dots)? Prints,
per build, setmaxnreg, wgmma, TMA copies, warps and shared memory. Result: the warp-specialisation pass fails at 4
warps and is not applied at 8 (no setmaxnreg, no extra warps); a plain GEMM loop is specialised (12 warps)."""

import re

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


@triton.jit
def probe(q, g, v, h, out, n_tiles, N: tl.constexpr, K: tl.constexpr, V: tl.constexpr, WS: tl.constexpr):
    qd = tl.make_tensor_descriptor(q, shape=[n_tiles * N, K], strides=[K, 1], block_shape=[N, K])
    gd = tl.make_tensor_descriptor(g, shape=[n_tiles * N, K], strides=[K, 1], block_shape=[N, K])
    vd = tl.make_tensor_descriptor(v, shape=[n_tiles * N, V], strides=[V, 1], block_shape=[N, V])
    hd = tl.make_tensor_descriptor(h, shape=[n_tiles * K, V], strides=[V, 1], block_shape=[K, V])
    od = tl.make_tensor_descriptor(out, shape=[n_tiles * N, K], strides=[K, 1], block_shape=[N, K])
    for t in tl.range(tl.program_id(0), n_tiles, tl.num_programs(0), warp_specialize=WS):
        qt = qd.load([t * N, 0])
        gt = gd.load([t * N, 0]).to(tl.float32)
        vt = vd.load([t * N, 0])
        ht = hd.load([t * K, 0])
        cum = tl.cumsum(tl.log(tl.sigmoid(gt)), 0)
        qe = (qt.to(tl.float32) * tl.exp(cum)).to(tl.bfloat16)
        ke = ((1 - tl.sigmoid(gt)) * tl.exp(-cum)).to(tl.bfloat16)
        rows = tl.arange(0, N)
        s = tl.where(rows[:, None] >= rows[None, :], tl.dot(qe, tl.trans(ke)), 0.0)
        dq = tl.dot(s.to(tl.bfloat16), ke, tl.dot(vt, tl.trans(ht)))
        od.store([t * N, 0], (dq * tl.exp(cum)).to(tl.bfloat16))


def main():
    signature = {name: "*bf16" for name in ("q", "g", "v", "h", "out")}
    signature.update({"n_tiles": "i32", "N": "constexpr", "K": "constexpr", "V": "constexpr", "WS": "constexpr"})
    for ws in (False, True):
        for warps in (4, 8):
            source = ASTSource(
                fn=probe, signature=signature, constexprs={(6,): 64, (7,): 64, (8,): 128, (9,): ws},
                attrs={(i,): [["tt.divisibility", 16]] for i in range(5)},
            )  # fmt: skip
            try:
                build = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
            except RuntimeError as error:
                print(f"warp_specialize={ws} warps={warps}: failed ({str(error)[:80]})")
                continue
            ptx = build.asm["ptx"]
            print(
                f"warp_specialize={ws} warps={warps}: setmaxnreg {len(re.findall('setmaxnreg', ptx))}, "
                f"wgmma {len(re.findall('wgmma.mma_async', ptx))}, TMA {len(re.findall('cp.async.bulk.tensor', ptx))}, "
                f"warps {build.metadata.num_warps}, shared {build.metadata.shared} B"
            )


if __name__ == "__main__":
    main()
