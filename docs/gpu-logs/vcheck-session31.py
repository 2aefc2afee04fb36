"""Session 31: does the autotuned 4-warp split of the qk gradients fault only where V < BV? python3 .gpu/vcheck.py V"""

import sys

sys.path[:0] = ["tests/ops", "tests", "."]
import test_metala_core_triton as t  # noqa: E402
import torch  # noqa: E402

V = int(sys.argv[1])
for seq, k, decay in [(70, 64, "mixed"), (1, 16, "mild"), (130, 16, "mild"), (63, 16, "strong"), (300, 64, "mixed")]:
    for _ in range(3):
        t.check(torch.bfloat16, 2, seq, 3, k, V, decay, views=False)
        torch.cuda.synchronize()
    print(f"V{V} T{seq} K{k} {decay}: ok", flush=True)
print(f"V{V} all ok")
