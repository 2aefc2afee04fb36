"""The loss's one-kernel softmax cross-entropy (ops/cross_entropy_kernels.py, launched by ops/cross_entropy_op.py)
against fp64: per-row losses (logsumexp − target logit) · weight and, written over the logits, the gradient
weight · (softmax − onehot), at vocabularies that leave a partial last block and span several, with zero weights
and masked labels outside the vocabulary, and the loss-only form leaving the logits untouched; then the
chunked linear + cross-entropy loss (model/loss.py) through the kernel against F.cross_entropy in fp64.

Runs natively on a CUDA GPU, or on the CPU through the Triton interpreter when TRITON_INTERPRET=1 is set before the
run; skips otherwise (the project's CPU suite)."""

import pytest
import torch
import torch.nn.functional as F
import triton_runs
from triton_runs import relative_error

from neox_metala.ops import cross_entropy_op

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
BOUNDS = triton_runs.ONE_ROUNDING


def draw(rows, vocab, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=gen) * 4.0
    labels = torch.randint(0, vocab, (rows,), generator=gen)
    weights = torch.rand(rows, generator=gen)
    weights[1::4] = 0.0  # masked tokens
    labels[::5], weights[::5] = vocab + 3, 0.0  # a label outside the vocabulary (masked): read nowhere
    return logits.to(DEVICE, dtype), labels.to(DEVICE), weights.to(DEVICE)


def exact(logits, labels, weights):
    wide = logits.double()
    inside = (labels >= 0) & (labels < wide.shape[1])
    target = wide.gather(1, labels.clamp(0, wide.shape[1] - 1)[:, None]).squeeze(1) * inside
    losses = (wide.logsumexp(-1) - target) * weights.double()
    onehot = F.one_hot(labels.clamp(0, wide.shape[1] - 1), wide.shape[1]).double() * inside[:, None]
    return losses, (wide.softmax(-1) - onehot) * weights.double()[:, None]


def check(rows, vocab, dtype):
    logits, labels, weights = draw(rows, vocab, dtype)
    losses_want, grad_want = exact(logits, labels, weights)
    losses = torch.empty(rows, device=DEVICE)
    kept = logits.clone()
    cross_entropy_op.cross_entropy_rows(kept, labels, weights, losses, write_grad=False)
    assert torch.equal(kept, logits)  # the loss-only form writes nothing over the logits
    cross_entropy_op.cross_entropy_rows(logits, labels, weights, losses, write_grad=True)
    assert logits.dtype == dtype
    errors = {"loss": relative_error(losses, losses_want), "grad": relative_error(logits, grad_want)}
    assert max(errors.values()) < BOUNDS[dtype], errors


@pytest.mark.parametrize("rows, vocab", [(9, 50), (4, 16), (3, 7)])
def test_kernel_fp32_small_blocks(rows, vocab, monkeypatch):
    monkeypatch.setattr(cross_entropy_op, "BLOCK", 16)  # several blocks per row at the interpreter's sizes
    check(rows, vocab, torch.float32)


def test_kernel_fp32_default_block():
    check(3, 5000, torch.float32)


def test_chunked_loss_through_the_kernel_equals_full_logits(single_rank, monkeypatch):
    from neox_metala.model import loss as loss_module

    monkeypatch.setattr(loss_module, "CHUNK_TOKENS", 5)  # 13 tokens: chunks of 5, 5, 3
    monkeypatch.setattr(cross_entropy_op, "BLOCK", 16)
    gen = torch.Generator().manual_seed(5)
    hidden, weight = torch.randn(13, 8, generator=gen), torch.randn(40, 8, generator=gen)
    labels = torch.randint(0, 40, (13,), generator=gen)
    token_weights = (torch.rand(13, generator=gen) > 0.3).float()
    token_weights /= token_weights.sum()
    leaves = [hidden.double().requires_grad_(), weight.double().requires_grad_()]
    want = (F.cross_entropy(leaves[0] @ leaves[1].t(), labels, reduction="none") * token_weights.double()).sum()
    want_grads = torch.autograd.grad(want, leaves)
    leaves_ours = [t.to(DEVICE).requires_grad_() for t in (hidden, weight)]
    assert cross_entropy_op.applies(leaves_ours[0])
    got = loss_module.linear_cross_entropy(*leaves_ours, labels.to(DEVICE), token_weights.to(DEVICE))
    got_grads = torch.autograd.grad(got * 3.0, leaves_ours)  # the backward scales by the incoming gradient
    assert relative_error(got.detach().cpu(), want.detach()) < 1e-6
    for g, w in zip(got_grads, want_grads):
        assert relative_error(g.cpu() / 3.0, w) < 1e-6


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="half precision and the model's vocabulary: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
def test_kernel_within_bounds_on_the_gpu(dtype):
    check(300, 50304, dtype)
    check(64, 1000, dtype)
