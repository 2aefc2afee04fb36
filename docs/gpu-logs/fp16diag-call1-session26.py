"""Session 26 (session 25's script with STORED_DECAY_ROWS off): the fused-dv fp16 K64 mixed defect (non-finite dq
at the first token on an H200). Variants: the gate part NaN (as the test) / zero / inputs contiguous; each chunk_grads
configuration forced in turn."""

import os
import sys

sys.path[:0] = [os.path.join(os.getcwd(), "tests", "ops"), os.path.join(os.getcwd(), "tests")]
import test_metala_core_triton as t  # noqa: E402
import torch  # noqa: E402

from neox_metala.ops import metala_core_triton as m  # noqa: E402
from neox_metala.ops import triton_launch  # noqa: E402

triton_launch.ENABLED = False
m.SPLIT_DV = False
m.STORED_DECAY_ROWS = False
dtype = torch.float16
q, logits, v, cot = t.draw(2, 70, 3, 64, 32, "mixed")
base = [x.to(dtype) for x in (q, logits, v)]


def views(fill):
    (batch, seq, heads, k), vd = q.shape, v.shape[-1]
    widths = [heads * k, heads * k, heads * vd, heads * vd]
    proj = base[0].new_full((batch, seq, sum(widths)), fill)
    parts = proj.split(widths, dim=-1)
    for part, x in zip(parts, base):
        part.copy_(x.flatten(-2))
    return [p.unflatten(-1, (heads, -1)) for p in parts[:3]]


kernel = m._kernels()["chunk_grads"]
all_configs = list(kernel.configs)
for form, inputs in (("nan-gate", views(float("nan"))), ("zero-gate", views(0.0)), ("contiguous", base)):
    for cfg in [None, *all_configs]:
        kernel.configs = all_configs if cfg is None else [cfg]
        kernel.cache = {}
        try:
            grads = m.metala_core_bwd(*inputs, t.SCALE, t.NORMALIZER, cot.to(dtype))
            torch.cuda.synchronize()
            bad = [
                (n, (~torch.isfinite(g)).nonzero()[:4].tolist(), int((~torch.isfinite(g)).sum()))
                for n, g in zip(("dq", "dlogits", "dv"), grads)
                if not torch.isfinite(g).all()
            ]
            print(f"FP16DIAG {form} config {cfg}: {'finite' if not bad else bad}", flush=True)
        except Exception as e:
            print(f"FP16DIAG {form} config {cfg}: raised {e!r}"[:300], flush=True)
