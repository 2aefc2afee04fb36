"""Session 43, call 2: why test_qk_gradients_over_channel_blocks_equal_the_recurrence[T70-K64-mixed-split{2,4}]
failed (fp32, H200): the recurrence check and the accumulating backward's distance from plain + prior, per gradient,
for each backward form. Run from the repository root: python3 docs/gpu-logs/diag-split-session43.py"""

import sys

import pytest
import torch

sys.path[:0] = ["tests", "tests/ops"]
import test_metala_core_triton as t  # noqa: E402
import triton_runs  # noqa: E402

from neox_metala.ops import metala_core_triton  # noqa: E402


def accumulate_errors(tag):
    q, logits, v, cotangent = (x.float() for x in t.draw(1, 70, 2, 64, 32, "mixed"))
    plain = metala_core_triton.metala_core_bwd(q, logits, v, t.SCALE, t.NORMALIZER, cotangent)
    priors = [torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(t.DEVICE) for x in plain]
    given = [prior.clone() for prior in priors]
    metala_core_triton.metala_core_bwd(
        q, logits, v, t.SCALE, t.NORMALIZER, cotangent, grads=given, accumulate=True
    )  # fmt: skip
    for name, got, prior, want in zip(("dq", "dg", "dv"), given, priors, plain):
        error, size = (got - (prior + want)).abs(), (prior + want).abs()
        print(
            f"{tag} accumulate {name} max abs {error.max().item():.3e} where |want| "
            f"{size.flatten()[error.argmax()].item():.3e}; max |want| {size.max().item():.3e}"
        )


for block in (t.SPLIT_2, t.SPLIT_4):
    for chained in ("auto", "0"):
        for stored in (True, False):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(metala_core_triton, "STORED_DECAY_ROWS", stored)
                patch.setattr(metala_core_triton, "CHAINED_BACKWARD", chained)
                block_v, split, warps, stages = block
                triton_runs.force_config(patch, "chunk_qk_grads", {"BV": block_v, "K_SPLIT": split}, warps, stages)
                tag = f"DIAG split{split} chained={chained} stored={stored}"
                try:
                    t.check(torch.float32, 1, 70, 2, 64, 32, "mixed")
                    print(tag, "check passed")
                except AssertionError as error:
                    print(tag, "check FAILED", str(error)[:400])
                accumulate_errors(tag)
