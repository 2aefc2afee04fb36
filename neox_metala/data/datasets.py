"""Training data: megatron-core's GPTDataset / BlendedDataset over indexed .bin/.idx files, and a resumable
data-parallel batch stream whose whole state is the number of samples consumed.

Sample order: the split's samples are cut into chunks of micro_batch x data_parallel; micro step j of the
run takes chunk j and data-parallel rank r takes the r-th micro batch of it. So resuming needs only
`consumed_samples`, and DP=2 sees exactly the global batches of DP=1 with twice the accumulation.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

NO_PAD_TOKEN = -1  # packed pretraining data has no padding; -1 never collides with a real token


class Split(enum.IntEnum):
    """A split's index in `build_datasets`' (train, valid, test)."""

    TRAIN = 0
    VALID = 1
    TEST = 2


@dataclass(frozen=True)
class DataSources:
    """Either one blend split by `split` ("969,30,1"), or explicit per-split path lists with weights."""

    data_path: list[str] | None = None
    split: str = "969,30,1"
    train_paths: list[str] | None = None
    train_weights: list[float] | None = None
    valid_paths: list[str] | None = None
    valid_weights: list[float] | None = None
    test_paths: list[str] | None = None
    test_weights: list[float] | None = None


class DatasetTokenizerInfo:
    """What megatron-core's datasets ask of a tokenizer."""

    def __init__(self, vocab_size: int, eod_id: int, fingerprint: str):
        self.vocab_size = vocab_size
        self.eod = eod_id
        self.pad = NO_PAD_TOKEN
        self.unique_identifiers = {"class": "neox_metala", "fingerprint": fingerprint}


def _blend(paths, weights):
    return (list(paths), list(weights) if weights else None) if paths else None


def build_datasets(
    sources: DataSources,
    seq_length: int,
    seed: int,
    num_samples: tuple[int, int, int],
    tokenizer: DatasetTokenizerInfo,
    cache_dir: str | None,
):
    """(train, valid, test) datasets of at least `num_samples` samples each (a split may be None).

    megatron-core writes its index cache in place, so a job killed during the first build would leave truncated
    files that fail every later start. The cache is therefore built in `<cache_dir>/<settings hash>.partial` and
    renamed into place once complete; a leftover `.partial` is rebuilt.
    """
    if sources.data_path:
        blend = dict(blend=_blend(sources.data_path, None), split=sources.split)
    else:
        blend = dict(
            blend_per_split=[
                _blend(sources.train_paths, sources.train_weights),
                _blend(sources.valid_paths, sources.valid_weights),
                _blend(sources.test_paths, sources.test_weights),
            ]
        )
    settings = [dataclasses.asdict(sources), seq_length, seed, list(num_samples), tokenizer.unique_identifiers]
    final = None
    if cache_dir:
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        final = os.path.join(cache_dir, key)
        ready = os.path.isdir(final)
        _barrier()  # every rank looks before rank 0 renames anything
        cache_dir = final if ready else final + ".partial"
        if not ready and _rank() == 0:
            shutil.rmtree(cache_dir, ignore_errors=True)
        _barrier()
        final = None if ready else final
    config = GPTDatasetConfig(
        random_seed=seed,
        sequence_length=seq_length,
        tokenizer=tokenizer,
        path_to_cache=cache_dir,
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,
        mmap_bin_files=True,
        **blend,
    )
    sizes = [n if n > 0 else None for n in num_samples]
    datasets = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    if final:
        _barrier()  # every rank has its (memory-mapped) files open: renaming the folder does not disturb them
        if _rank() == 0:
            os.replace(cache_dir, final)
    return datasets


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class DataParallelSampler:
    """Yields this rank's micro-batch index lists, starting after `consumed_samples` of the whole run."""

    def __init__(self, dataset_len: int, consumed_samples: int, micro_batch: int, dp_rank: int, dp_size: int):
        self.dataset_len = dataset_len
        self.consumed_samples = consumed_samples
        self.micro_batch, self.dp_rank, self.dp_size = micro_batch, dp_rank, dp_size

    def __iter__(self):
        chunk = self.micro_batch * self.dp_size
        start = self.consumed_samples
        while start + chunk <= self.dataset_len:
            first = start + self.dp_rank * self.micro_batch
            yield list(range(first, first + self.micro_batch))
            start += chunk


def document_starts(tokens: torch.Tensor, eod_id: int) -> torch.Tensor:
    """(batch, seq) token ids -> (batch, seq) bool, True where a packed document begins: at the token after each
    EOD (every document of the indexed data ends with the tokenizer's EOD, data_prep's default). The EOD belongs
    to the document it ends, as in Megatron-LM's reset_attention_mask; nothing precedes position 0."""
    starts = torch.zeros_like(tokens, dtype=torch.bool)
    starts[:, 1:] = tokens[:, :-1] == eod_id
    return starts


def _collate(samples):
    """(tokens, labels, loss_mask) as numpy arrays in the narrowest exact dtypes (as_torch widens them): a worker's
    batch crosses to the trainer through a pipe, where tensors would each pass a shared-memory file descriptor and
    int64 / fp32 would be 2.7x the bytes (main-thread time per 8 x 2048 micro batch, 2-core CPU: 3.4 ms with
    tensors, 1.4 ms so). megatron-core's GPTDataset gives loss masks of 0 and 1 only (pads, optionally EOD)."""
    tokens = np.stack([np.asarray(s["tokens"]) for s in samples]).astype(np.int32)  # (micro_batch, seq)
    labels = np.stack([np.asarray(s["labels"]) for s in samples]).astype(np.int32)
    loss_mask = np.stack([np.asarray(s["loss_mask"]) for s in samples]).astype(bool)
    return HostBatch(tokens, labels, loss_mask)


class HostBatch(NamedTuple):
    """A micro batch as the workers send it (_collate): numpy arrays in the narrowest exact dtypes."""

    tokens: np.ndarray
    labels: np.ndarray
    loss_mask: np.ndarray

    def pin_memory(self, device=None):
        """What the DataLoader's receiving thread calls (pin_memory=True: GPU machines): as_torch's tensors in
        page-locked memory, so that the trainer's non-blocking copies to the GPU are asynchronous. From pageable
        memory the driver may synchronize with the stream to stage a copy (CUDA runtime API, "API synchronization
        behavior"): the host would wait for the GPU's queue to drain at every micro batch."""
        return tuple(t.pin_memory() for t in as_torch(self))


def as_torch(batch):
    """A batch of micro_batches -> (tokens int64, labels int64, loss_mask fp32) tensors (as they are if the
    receiving thread made them already: HostBatch.pin_memory)."""
    tokens, labels, loss_mask = batch
    if isinstance(tokens, torch.Tensor):
        return tokens, labels, loss_mask
    return torch.from_numpy(tokens).long(), torch.from_numpy(labels).long(), torch.from_numpy(loss_mask).float()


def micro_batches(
    dataset,
    consumed_samples: int,
    micro_batch: int,
    dp_rank: int,
    dp_size: int,
    num_workers: int = 0,
    receiving_thread: bool = False,
):
    """Iterator of micro batches (HostBatch; as_torch turns them into tensors) for this data-parallel rank.

    receiving_thread: take the workers' batches off the pipe in a thread of the DataLoader (its pin_memory thread:
    it needs a GPU), which also makes them page-locked tensors (HostBatch.pin_memory), so that the training loop's
    thread only picks them up from a queue."""
    sampler = DataParallelSampler(len(dataset), consumed_samples, micro_batch, dp_rank, dp_size)
    # Its own generator: a DataLoader iterator otherwise draws its worker seed from the global RNG, which would
    # shift the dropout masks of a resumed run (it builds its iterators after restoring the RNG state).
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=_collate,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=receiving_thread and num_workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    return iter(loader)
