"""Datasets for a run and the micro-batch streams the two DeepSpeed engines consume."""

from __future__ import annotations

import time

import torch

from .. import parallel
from ..config import NeoXArgs
from ..data.datasets import DataSources, DatasetTokenizerInfo, build_datasets, micro_batches
from ..model.gpt import no_padding_mask


def split_sample_counts(args: NeoXArgs) -> tuple[int, int, int]:
    """Samples each split must provide: every train step, every evaluation, and one final test pass."""
    training = args.training
    global_batch = training.train_batch_size
    evaluations = training.train_iters // training.eval_interval + 1
    return (training.train_iters * global_batch, evaluations * training.eval_iters * global_batch,
            training.eval_iters * global_batch)


def build_run_datasets(args: NeoXArgs, tokenizer, cache_dir: str | None):
    data = args.data
    sources = DataSources(data_path=[data.data_path] if data.data_path else None, split=data.split,
                          train_paths=data.train_data_paths, train_weights=data.train_data_weights,
                          valid_paths=data.valid_data_paths, valid_weights=data.valid_data_weights,
                          test_paths=data.test_data_paths, test_weights=data.test_data_weights)
    info = DatasetTokenizerInfo(tokenizer.vocab_size, tokenizer.eod_id, tokenizer.fingerprint)
    return build_datasets(sources, args.model.seq_length, args.training.seed, split_sample_counts(args), info,
                          cache_dir)


class BatchStream:
    """Micro batches of one split for this data-parallel rank, moved to the device, with the wait measured.

    Yields ((tokens, mask), (labels, loss_mask)): the pipeline engine's (inputs, labels) form.
    """

    def __init__(self, dataset, consumed_samples: int, micro_batch: int, device, num_workers: int):
        self.iterator = micro_batches(dataset, consumed_samples, micro_batch, parallel.data_parallel_rank(),
                                      parallel.data_parallel_size(), num_workers)
        self.device = device
        self.wait_seconds = 0.0
        self.mask = no_padding_mask(device)

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        tokens, labels, loss_mask = next(self.iterator)
        self.wait_seconds += time.perf_counter() - start
        to_device = lambda t: t.to(self.device, non_blocking=True)  # noqa: E731
        return (to_device(tokens), self.mask), (to_device(labels), to_device(loss_mask))

    def take_wait_seconds(self) -> float:
        waited, self.wait_seconds = self.wait_seconds, 0.0
        return waited


def stream_device(engine) -> torch.device:
    return torch.device(engine.device)  # DeepSpeed gives a string or a device
