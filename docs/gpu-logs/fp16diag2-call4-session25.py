"""Session 25 call 4: the fused-dv fp16 K64 mixed case as check() runs it (forward first, direct launches on),
against variants: direct launches off (NEOX_METALA_DIRECT_LAUNCH=0 in a second process), no forward first."""

import os
import sys

sys.path[:0] = [os.path.join(os.getcwd(), "tests", "ops"), os.path.join(os.getcwd(), "tests")]
import test_metala_core_triton as t  # noqa: E402
import torch  # noqa: E402

from neox_metala.ops import metala_core_triton as m  # noqa: E402
from neox_metala.ops import triton_launch  # noqa: E402

m.SPLIT_DV = False
dtype = torch.float16
forward_first = sys.argv[1] == "fwd"
q, logits, v, cot = t.draw(2, 70, 3, 64, 32, "mixed")
q, logits, v = (x.to(dtype).double() for x in (q, logits, v))
inputs = t.projection_views(q.to(dtype), logits.to(dtype), v.to(dtype))
for attempt in range(3):
    if forward_first:
        out, states = m.metala_core_fwd(*inputs, t.SCALE, t.NORMALIZER, keep_states=True)
    grads = m.metala_core_bwd(*inputs, t.SCALE, t.NORMALIZER, cot.to(dtype))
    torch.cuda.synchronize()
    bad = [
        (n, (~torch.isfinite(g)).nonzero()[:3].tolist(), int((~torch.isfinite(g)).sum()))
        for n, g in zip(("dq", "dlogits", "dv"), grads)
        if not torch.isfinite(g).all()
    ]
    picks = {k: str(getattr(a, "best_config", None))[:60] for k, a in m._kernels().items() if hasattr(a, "best_config")}
    print(
        f"FP16DIAG2 {sys.argv[1]} direct={triton_launch.ENABLED} attempt {attempt} direct_launches "
        f"{triton_launch.direct_launches}: {'finite' if not bad else bad}",
        flush=True,
    )
print("PICKS", picks)
