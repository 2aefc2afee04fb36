"""The chunked linear + cross-entropy loss (model/loss.py) against F.cross_entropy on full logits, fp64: one
rank, and the vocabulary split over two tensor-parallel ranks (real gloo processes)."""

import pytest
import torch
import torch.nn.functional as F

from dist_helpers import run_workers

F64 = torch.float64
TOKENS, HIDDEN, VOCAB = 13, 8, 20


def problem():
    gen = torch.Generator().manual_seed(5)
    hidden = torch.randn(TOKENS, HIDDEN, dtype=F64, generator=gen)
    weight = torch.randn(VOCAB, HIDDEN, dtype=F64, generator=gen)
    labels = torch.randint(0, VOCAB, (TOKENS,), generator=gen)
    mask = (torch.rand(TOKENS, generator=gen) > 0.3).to(F64)
    return hidden, weight, labels, mask / mask.sum()


def reference(hidden, weight, labels, token_weights):
    hidden, weight = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    loss = (F.cross_entropy(hidden @ weight.t(), labels, reduction="none") * token_weights).sum()
    loss.backward()
    return loss.detach(), hidden.grad, weight.grad


def ours(hidden, weight, labels, token_weights, weight_slice=slice(None)):
    from neox_metala.model.loss import linear_cross_entropy

    hidden = hidden.clone().requires_grad_()
    local = weight[weight_slice].clone().requires_grad_()
    loss = linear_cross_entropy(hidden, local, labels, token_weights)
    (loss * 3.0).backward()  # the backward scales by the incoming gradient
    return loss.detach(), hidden.grad / 3.0, local.grad / 3.0


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_chunked_loss_and_gradients_equal_full_logits(single_rank, monkeypatch):
    from neox_metala.model import loss as loss_module

    monkeypatch.setattr(loss_module, "CHUNK_TOKENS", 5)  # 13 tokens: chunks of 5, 5, 3
    expected = reference(*problem())
    got = ours(*problem())
    for name, a, b in zip(("loss", "d hidden", "d weight"), got, expected):
        assert rel(a, b) <= 1e-12, name


def test_logits_and_head_forms_of_the_loss_agree(single_rank):
    from neox_metala.model.loss import cross_entropy_loss

    hidden, weight, labels, _ = problem()
    seq, batch = 13, 1
    mask = (torch.arange(TOKENS) % 4 != 0).to(F64).view(batch, seq)
    labels = labels.view(batch, seq)
    hidden = hidden.view(seq, batch, HIDDEN)
    from_logits = cross_entropy_loss(hidden @ weight.t(), (labels, mask))
    from_head = cross_entropy_loss((hidden, weight), (labels, mask))
    assert rel(from_head, from_logits) <= 1e-6  # the logits form computes in fp32 (megatron-core's loss)


def tp_loss_worker(rank, world_size):
    from neox_metala import parallel
    from neox_metala.model import loss as loss_module

    parallel.initialize(tensor_parallel=world_size, pipeline_parallel=1)
    loss_module.CHUNK_TOKENS = 4
    per_rank = VOCAB // world_size
    return ours(*problem(), weight_slice=slice(rank * per_rank, (rank + 1) * per_rank))


@pytest.mark.multiproc
def test_vocab_parallel_chunked_loss_equals_full_logits(tmp_path):
    expected_loss, expected_hidden, expected_weight = reference(*problem())
    ranks = run_workers(tp_loss_worker, 2, tmp_path)
    for loss, d_hidden, _ in ranks:
        assert rel(loss, expected_loss) <= 1e-12
        assert rel(d_hidden, expected_hidden) <= 1e-12  # summed over the ranks' vocab slices
    assert rel(torch.cat([r[2] for r in ranks]), expected_weight) <= 1e-12


@pytest.mark.gpu
def test_half_precision_chunks_accumulate_the_weight_gradient_in_fp32_on_the_gpu(single_rank, monkeypatch):
    """bf16 on CUDA: each chunk's weight-gradient product is added in fp32 by the GEMM itself; the gradients stay
    within bf16 rounding of fp64 on the same (bf16-rounded) inputs."""
    from neox_metala.model import loss as loss_module

    assert loss_module._fp32_accumulating_gemm()
    monkeypatch.setattr(loss_module, "CHUNK_TOKENS", 5)
    inputs = [t.to(torch.bfloat16).to(F64) if t.is_floating_point() else t for t in problem()]
    expected = reference(*inputs)
    hidden, weight, labels, token_weights = inputs
    got = ours(hidden.cuda().bfloat16(), weight.cuda().bfloat16(), labels.cuda(), token_weights.cuda().float())
    for name, a, b in zip(("loss", "d hidden", "d weight"), got, expected):
        assert rel(a.cpu().double(), b) <= 1e-2, name
