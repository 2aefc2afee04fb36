"""The trainer's micro-batch stream: with reset_attention_mask (an EOD id) each micro batch carries its document
starts as a third input, computed once from its tokens; without, the inputs are exactly (tokens, mask) as before."""

import numpy as np
import pytest
import torch

from neox_metala.data import datasets
from neox_metala.training.batches import BatchStream

EOD = 0


def samples(seq=8):
    tokens = [np.array([5, EOD, 7, 7, EOD, EOD, 3, 4, 9]), np.array([1, 2, 3, EOD, 4, 5, 6, 7, 8])]
    return [{"tokens": t[:seq], "labels": t[1:], "loss_mask": np.ones(seq, dtype=np.float32)} for t in tokens]


def first_inputs(eod_id):
    stream = BatchStream(samples(), 0, 2, torch.device("cpu"), num_workers=0, eod_id=eod_id)
    try:
        inputs, _labels = next(stream)
    finally:
        stream.close()
    return inputs


def test_without_eod_id_the_inputs_are_tokens_and_mask():
    tokens, mask = first_inputs(None)
    assert tokens.shape == (2, 8) and mask.numel() == 1


def test_with_eod_id_the_inputs_carry_the_document_starts():
    tokens, mask, starts = first_inputs(EOD)
    expected = torch.tensor([[0, 0, 1, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 0, 0, 0]], dtype=torch.bool)
    assert mask.numel() == 1 and torch.equal(starts, expected)


def test_workers_batches_equal_the_samples_in_the_trainers_dtypes(single_rank):
    """Batches cross from the workers in narrow dtypes (datasets._collate); the stream gives back exactly the
    samples, stacked, as int64 tokens / labels and an fp32 loss mask (pads' -1 labels and masked tokens included)."""
    rng = np.random.default_rng(3)
    data = [
        {
            "tokens": rng.integers(0, 50_304, 16),
            "labels": np.where(rng.random(16) < 0.2, -1, rng.integers(0, 50_304, 16)),
            "loss_mask": (rng.random(16) < 0.7).astype(np.float32),
        }
        for _ in range(6)
    ]
    stream = BatchStream(data, 2, 2, torch.device("cpu"), num_workers=2)
    try:
        batches = [next(stream) for _ in range(2)]
    finally:
        stream.close()
    for index, ((tokens, _mask), (labels, loss_mask)) in enumerate(batches):
        rows = data[2 + 2 * index : 4 + 2 * index]
        for name, got, dtype in (("tokens", tokens, torch.int64), ("labels", labels, torch.int64),
                                 ("loss_mask", loss_mask, torch.float32)):  # fmt: skip
            assert got.dtype == dtype, name
            assert torch.equal(got, torch.as_tensor(np.stack([row[name] for row in rows])).to(dtype)), name


@pytest.mark.gpu
def test_on_a_gpu_the_workers_batches_arrive_pinned_and_equal(single_rank):
    """On a GPU machine the DataLoader's receiving thread widens each batch into page-locked tensors
    (datasets.HostBatch.pin_memory), so that the copies to the GPU do not wait for its queue; the batches on the GPU
    are exactly the samples."""
    data = samples()
    stream = BatchStream(data, 0, 1, torch.device("cuda"), num_workers=1)  # one sample per micro batch
    try:
        host = next(stream.iterator)  # sample 0, as the receiving thread hands it over
        (tokens, _mask), (labels, loss_mask) = next(stream)  # sample 1, on the GPU
    finally:
        stream.close()
    assert all(isinstance(t, torch.Tensor) and t.is_pinned() for t in host), [type(t) for t in host]
    assert [t.dtype for t in host] == [torch.int64, torch.int64, torch.float32]
    assert torch.equal(host[0], torch.as_tensor(data[0]["tokens"][None]).long())
    assert tokens.is_cuda and torch.equal(tokens.cpu(), torch.as_tensor(data[1]["tokens"][None]).long())
    assert torch.equal(labels.cpu(), torch.as_tensor(data[1]["labels"][None]).long())
    assert torch.equal(loss_mask.cpu(), torch.ones(1, 8))


def test_as_torch_passes_the_receiving_threads_tensors_through():
    """as_torch widens the workers' numpy batches, and leaves alone the tensors that the receiving thread made."""
    widened = datasets.as_torch(datasets._collate(samples()))
    assert [t.dtype for t in widened] == [torch.int64, torch.int64, torch.float32]
    assert all(again is made for again, made in zip(datasets.as_torch(widened), widened))
