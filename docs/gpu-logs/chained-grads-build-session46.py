"""Session 46's probe: the sm90 bf16 build of chained_grads_kernel (4 warps, 1 stage, ACCUMULATE, the block's H16 K64
V128), its registers, spills and instruction count, on a CPU (bench/core_build.py's compiler). Run from a tree, with
or without dv-aug-in-chain-probe-session46.diff applied (then the build is the probe's AUG_DV form):

    python docs/gpu-logs/chained-grads-build-session46.py [BV]      # BV 128 (the autotuner's pick) or 64
"""

import sys

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
from neox_metala.ops import metala_core_triton  # noqa: E402

metala_core_triton.FAST_EXP = True  # before the kernels' module is imported, as at a launch
import core_build  # noqa: E402
import core_sass  # noqa: E402

from neox_metala.ops import metala_core_chained_grad_kernels  # noqa: E402

kernel = metala_core_chained_grad_kernels.chained_grads_kernel
pointers = ["q", "gate_logits", "d_out", "state_grads", "decays", "dv", "carried", "flags", "v", "aug_a"]
pointers = [name for name in pointers if name in kernel.arg_names]
fp32 = {"decays", "carried", "aug_a"}
signature = {name: "*fp32" if name in fp32 else "*i32" if name == "flags" else "*bf16" for name in pointers}
ints = ("T", "NT", "BH", "stride_q", "stride_g", "stride_dv", "stride_v")
signature.update({"scale": "fp32", "normalizer": "fp32", **dict.fromkeys(ints, "i32")})
signature = {name: signature.get(name, "constexpr") for name in kernel.arg_names}
bv = int(sys.argv[1]) if len(sys.argv) > 1 else 128
constants = dict(H=16, K=64, V=128, BT=64, BK=64, BV=bv, PRECISION="tf32", BF16=True, ACCUMULATE=True, AUG_DV=True)
constants = {name: value for name, value in constants.items() if name in kernel.arg_names}
aligned = [name for name in (*pointers, *ints[3:]) if name in kernel.arg_names]
build = core_build.compile_sm90(kernel, signature, constants, aligned, 4, 1)
usage = core_build.resource_usage(build.asm["cubin"])
print(f"BV {bv}, AUG_DV {'AUG_DV' in constants}: {usage}, {len(core_sass.sass(build.asm['cubin']))} instructions")
