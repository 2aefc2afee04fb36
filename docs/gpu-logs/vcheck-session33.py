"""Session 33: the core's errors against fp64 with the qk gradients' candidate forced (or "auto": the shipped
autotuner, QK_K_SPLIT and its prune), accumulating, B2 H3, at each V:K:T.
python3 .gpu/vcheck33.py INDEX DTYPE V:K:T..."""

import sys

sys.path[:0] = ["bench", "."]
import core_configs as cc  # noqa: E402
import torch  # noqa: E402

from neox_metala.ops import metala_core_triton as mt  # noqa: E402

index, dtype = sys.argv[1], getattr(torch, sys.argv[2])
cc.ACCUMULATE = True
for shape in sys.argv[3:]:
    v_dim, k_dim, seq = map(int, shape.split(":"))
    if index == "auto":
        mt._kernels = cc._SHIPPED
    else:
        cc.force({"chunk_qk_grads": cc.CANDIDATES["chunk_qk_grads"][int(index)]})
    inputs = cc.draw(2, seq, 3, k_dim, v_dim, dtype, "cuda")
    ours, ref = cc.core_call(*inputs, keep_states=True), cc.reference_call(*inputs)
    errors = {k: ((ours[k].double() - ref[k]).norm() / ref[k].norm()).item() for k in ours}
    picked = ""
    if index == "auto":
        picked = str(getattr(cc._SHIPPED()["chunk_qk_grads"], "best_config", ""))
    worst = max(errors.values())
    print(
        f"{'BAD ' if worst > 2e-2 else 'ok  '}#{index} {sys.argv[2]} V{v_dim} K{k_dim} T{seq}: "
        + " ".join(f"{k} {e:.2e}" for k, e in errors.items())
        + f" {picked}",
        flush=True,
    )
