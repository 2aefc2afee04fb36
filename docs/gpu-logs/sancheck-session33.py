"""Session 33: the qk gradients' channel split (bench/core_configs.py's candidate, forced: no autotuning) at one shape,
bf16, accumulating as the model does, optionally with the self-augmentation's terms; its errors against fp64.
Run under compute-sanitizer. python3 .gpu/sancheck.py V K T CANDIDATE [aug]"""

import sys

sys.path[:0] = ["bench", "."]
import core_configs as cc  # noqa: E402
import torch  # noqa: E402

from neox_metala.ops import metala_core_triton as mt  # noqa: E402

v_dim, k_dim, seq, index = map(int, sys.argv[1:5])
aug = "aug" in sys.argv[5:]
device = "cpu" if "cpu" in sys.argv[5:] else "cuda"
cc.ACCUMULATE = True
cc.force({"chunk_qk_grads": cc.CANDIDATES["chunk_qk_grads"][index]})
heads = 3
dtype = torch.float32 if "fp32" in sys.argv[5:] else torch.bfloat16
q, logits, v, d_out = cc.draw(2, seq, heads, k_dim, v_dim, dtype, device)
if aug:
    a = torch.zeros(2, seq, heads, device=device)
    w = torch.randn(heads * k_dim, device=device)
    _, states = mt.metala_core_fwd(q, logits, v, cc.SCALE, cc.NORMALIZER, keep_states=True, augmentation=(a, w))
    da = torch.randn(2, seq, heads, device=device)
    grads = cc.zero_gradients(q, v)
    mt.metala_core_bwd(q, logits, v, cc.SCALE, cc.NORMALIZER, d_out, states, grads=grads, accumulate=True,
                       augmentation=(da, w))  # fmt: skip
    print(f"#{index} V{v_dim} K{k_dim} T{seq} aug: ran, finite {all(bool(g.isfinite().all()) for g in grads)}")
else:
    ours, ref = cc.core_call(q, logits, v, d_out, keep_states=True), cc.reference_call(q, logits, v, d_out)
    errors = {k: ((ours[k].double() - ref[k]).norm() / ref[k].norm()).item() for k in ours}
    print(f"#{index} V{v_dim} K{k_dim} T{seq}: " + " ".join(f"{k} {e:.2e}" for k, e in errors.items()))
if device == "cuda":
    torch.cuda.synchronize()
print("done")
