"""Session 33: the shipped qk split (#21, forced) launched many times at the block's and the model's shapes, each
shape's first result against the unsplit #13's. python3 .gpu/stress.py ITERS"""

import sys
import time

sys.path[:0] = ["bench", "."]
import core_configs as cc  # noqa: E402
import torch  # noqa: E402

iters = int(sys.argv[1])
cc.ACCUMULATE = True
for shape in [(32, 2048, 16), (8, 2048, 8), (8, 8192, 16), (3, 300, 5)]:
    inputs = cc.draw(*shape, 64, 128, torch.bfloat16, "cuda")
    results = {}
    for index in (13, 21):
        cc.force({"chunk_qk_grads": cc.CANDIDATES["chunk_qk_grads"][index]})
        results[index] = cc.core_call(*inputs, keep_states=True)
    diff = {k: ((results[21][k].float() - results[13][k].float()).norm() / results[13][k].float().norm()).item()
            for k in ("dq", "dlogits")}  # fmt: skip
    grads = cc.zero_gradients(inputs[0], inputs[2])
    start = time.perf_counter()
    for i in range(iters):
        cc.core_call(*inputs, keep_states=True, grads=grads)
        if i % 500 == 499:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    print(
        f"B{shape[0]} T{shape[1]} H{shape[2]}: #21 vs #13 {diff}; {iters} steps of #21 in "
        f"{time.perf_counter() - start:.1f} s, no fault",
        flush=True,
    )
