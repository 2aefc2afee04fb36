"""Session 20, call 1 (as .gpu/bt_check.py): the core at another chunk size against fp64 (the tests' check), bf16 /
fp16 / fp32 on the GPU. python3 bt_check.py 32"""

import functools
import os
import sys

sys.path[:0] = [os.getcwd(), os.getcwd() + "/tests/ops", os.getcwd() + "/tests"]
import torch  # noqa: E402

from neox_metala.ops import metala_core_triton as m  # noqa: E402

size = int(sys.argv[1])
m.metala_core_fwd = functools.partial(m.metala_core_fwd, chunk_size=size)
m.metala_core_bwd = functools.partial(m.metala_core_bwd, chunk_size=size)
import test_metala_core_triton as t  # noqa: E402

CASES = [
    (2, 1, 4, 64, 128, "mild"),
    (2, 40, 4, 64, 128, "mixed"),
    (2, 300, 4, 64, 128, "mixed"),
    (2, 300, 4, 64, 128, "strong"),
    (1, 130, 2, 20, 24, "graded"),
    (2, 70, 4, 64, 128, "open-shut"),
    (4, 2048, 4, 64, 128, "mild"),
]
bad = 0
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    for batch, seq, heads, head_k, head_v, decay in CASES:
        try:
            t.check(dtype, batch, seq, heads, head_k, head_v, decay)
        except AssertionError as error:
            bad += 1
            print("FAIL", dtype, seq, decay, error)
print("chunk", size, "failures", bad)
