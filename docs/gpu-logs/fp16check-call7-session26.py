"""Session 26: the fused-dv fp16 T70 K64 mixed case through the test's own check(), each chunk_grads configuration
forced in turn, three times each (fresh autotuning of the other kernels each time)."""

import os
import sys

sys.path[:0] = [os.path.join(os.getcwd(), "tests", "ops"), os.path.join(os.getcwd(), "tests")]
import test_metala_core_triton as t  # noqa: E402
import torch  # noqa: E402

from neox_metala.ops import metala_core_triton as m  # noqa: E402

m.SPLIT_DV, m.STORED_DECAY_ROWS = False, False
kernels = m._kernels()
qk = kernels["chunk_grads"]
all_configs = list(qk.configs)
for cfg in all_configs:
    for rep in range(3):
        for k in kernels.values():
            if hasattr(k, "cache"):
                k.cache = {}
        qk.configs = [cfg]
        try:
            t.check(torch.float16, 2, 70, 3, 64, 32, "mixed", views=True)
            result = "pass"
        except AssertionError as e:
            result = f"fail {str(e)[:80]!r}"
        print(f"FP16CHECK qk {cfg} rep {rep}: {result}", flush=True)
