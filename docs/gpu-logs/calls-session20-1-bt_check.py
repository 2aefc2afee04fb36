"""bf16/fp16/fp32 checks of the core at another chunk size against fp64 (the tests' check), on the GPU."""
import functools, os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.getcwd() + "/tests/ops"); sys.path.insert(0, os.getcwd() + "/tests")
import torch
from neox_metala.ops import metala_core_triton as m
size = int(sys.argv[1])
m.metala_core_fwd = functools.partial(m.metala_core_fwd, chunk_size=size)
m.metala_core_bwd = functools.partial(m.metala_core_bwd, chunk_size=size)
import test_metala_core_triton as t
bad = 0
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    for b, seq, h, K, V, decay in [(2, 1, 4, 64, 128, "mild"), (2, 40, 4, 64, 128, "mixed"), (2, 300, 4, 64, 128, "mixed"),
                                   (2, 300, 4, 64, 128, "strong"), (1, 130, 2, 20, 24, "graded"), (2, 70, 4, 64, 128, "open-shut"),
                                   (4, 2048, 4, 64, 128, "mild")]:
        try:
            t.check(dtype, b, seq, h, K, V, decay)
        except AssertionError as e:
            bad += 1; print("FAIL", dtype, seq, decay, e)
print("chunk", size, "failures", bad)
