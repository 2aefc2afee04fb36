"""Session 41: test_chained_forward_over_pairs_of_v_blocks_equals_the_reference[V128-bf16] failed in session 40.
Is it the pairs, or V128 bf16 with self-augmentation at T70 under any chained configuration? Prints the mixer's
errors against fp64 for each forced chained configuration, seeds 0-2, with and without self-augmentation."""

import sys

import pytest
import torch

sys.path[:0] = ["tests", "tests/ops"]
import triton_runs  # noqa: E402
from test_mixer_triton import ASSERTED, HEADS, draw, errors_of, one_op, reference  # noqa: E402

from neox_metala.ops import metala_core_triton  # noqa: E402

CONFIGS = {
    "pairs-168": triton_runs.CHAINED_PAIRS,
    "pairs-free": ({"BV": 64, "V_STEPS": 2}, 4, 1, None),
    "BV64": ({"BV": 64}, 4, 1, None),
    "BV128": ({"BV": 128}, 4, 1, None),
}
for dtype, v_dim in ((torch.bfloat16, 128), (torch.float32, 128), (torch.bfloat16, 64)):
    for aug in (True, False):
        for name, config in CONFIGS.items():
            for seed in range(3):
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(metala_core_triton, "CHAINED_FORWARD", "1")
                    triton_runs.force_config(mp, "chained", *config)
                    inputs = draw(dtype, 2, 70, HEADS, v_dim, aug=aug, seed=seed)
                    y, grads = one_op(*inputs, HEADS, keep_states=True)
                    errors = errors_of(y, grads, reference(*inputs, HEADS), aug=aug)
                worst = max(errors[p] for p in ASSERTED if p in errors)
                detail = " ".join(f"{k}={v:.2e}" for k, v in errors.items())
                print(f"PROBE {dtype} V{v_dim} aug={aug} {name} seed{seed} worst={worst:.3e} | {detail}", flush=True)
