"""Session 27: test_one_op_equals_the_two_ops[aug-all-in-core] (fp32, B2 T70 H2) as numbers: each gradient's
norm-relative difference between the one op and the two ops, each path's error against fp64, and the core's picks."""

import sys

import torch

sys.path[:0] = ["tests/ops", "tests"]
import test_mixer_triton as t  # noqa: E402

from neox_metala.ops import metala_core_triton, mixer_op  # noqa: E402

mixer_op.CORE_AUG = mixer_op.CORE_A = True
inputs = t.draw(torch.float32, 2, 70, t.HEADS, 32, True)
y, grads = t.one_op(*inputs, t.HEADS, keep_states=False)
y2, grads2 = t.two_ops(*inputs, t.HEADS)
print("TWOOPS y", f"{((y - y2).norm() / y2.norm()).item():.3e}")
for i, (a, b) in enumerate(zip(grads, grads2)):
    print("TWOOPS grad", i, f"{((a - b).norm() / b.norm()).item():.3e}")
expected = t.reference(*inputs, t.HEADS)
print("TWOOPS one-op vs fp64", {k: f"{v:.2e}" for k, v in t.errors_of(y, grads, expected, aug=True).items()})
print("TWOOPS two-ops vs fp64", {k: f"{v:.2e}" for k, v in t.errors_of(y2, grads2, expected, aug=True).items()})
for name, kernel in metala_core_triton._kernels().items():
    picks = {str(key[-4:]): str(config) for key, config in getattr(kernel, "cache", {}).items()}
    print("TWOOPS pick", name, picks)
