"""Datasets for a run and the micro-batch streams the two DeepSpeed engines consume."""

from __future__ import annotations

import atexit
import time
import weakref

import torch
import torch.utils.data  # noqa: F401  (its at-exit hook must be registered before ours, so that ours runs first)

from .. import parallel
from ..config import NeoXArgs
from ..data.datasets import DatasetTokenizerInfo, DataSources, as_torch, build_datasets, document_starts, micro_batches
from ..model.gpt import no_padding_mask
from .signals import preemption_signals_blocked


def split_sample_counts(args: NeoXArgs) -> tuple[int, int, int]:
    """Samples each split must provide: every train step, every evaluation, and one final test pass."""
    training = args.training
    global_batch = training.train_batch_size
    evaluations = training.train_iters // training.eval_interval + 1
    return (
        training.train_iters * global_batch,
        evaluations * training.eval_iters * global_batch,
        training.eval_iters * global_batch,
    )


def build_run_datasets(args: NeoXArgs, tokenizer, cache_dir: str | None):
    data = args.data
    sources = DataSources(
        data_path=[data.data_path] if data.data_path else None,
        split=data.split,
        train_paths=data.train_data_paths,
        train_weights=data.train_data_weights,
        valid_paths=data.valid_data_paths,
        valid_weights=data.valid_data_weights,
        test_paths=data.test_data_paths,
        test_weights=data.test_data_weights,
    )
    info = DatasetTokenizerInfo(tokenizer.vocab_size, tokenizer.eod_id, tokenizer.fingerprint)
    return build_datasets(
        sources, args.model.seq_length, args.training.seed, split_sample_counts(args), info, cache_dir
    )


class BatchStream:
    """Micro batches of one split for this data-parallel rank, moved to the device, with the wait measured.

    Yields ((tokens, mask), (labels, loss_mask)): the pipeline engine's (inputs, labels) form; with `eod_id` (the
    config's reset_attention_mask), ((tokens, mask, document_starts), ...): where each packed document begins.
    Owns its DataLoader workers and must be closed (`close`, or at the latest at interpreter exit): the workers
    run with the preemption signals blocked, so neither multiprocessing's at-exit `terminate()` nor a launcher's
    SIGTERM can end them, and a process that exits with a stream open would wait for them forever.
    """

    def __init__(self, dataset, consumed_samples: int, micro_batch: int, device, num_workers: int, eod_id=None):
        with preemption_signals_blocked():  # inherited by the DataLoader workers started here
            self.iterator = micro_batches(
                dataset,
                consumed_samples,
                micro_batch,
                parallel.data_parallel_rank(),
                parallel.data_parallel_size(),
                num_workers,
                receiving_thread=torch.device(device).type == "cuda",
            )
        _OPEN_STREAMS.add(self)
        self.device = device
        self.wait_seconds = 0.0
        self.mask = no_padding_mask(device)
        self.eod_id = eod_id

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        tokens, labels, loss_mask = as_torch(next(self.iterator))
        self.wait_seconds += time.perf_counter() - start
        to_device = lambda t: t.to(self.device, non_blocking=True)  # noqa: E731
        tokens = to_device(tokens)
        inputs = (
            (tokens, self.mask) if self.eod_id is None else (tokens, self.mask, document_starts(tokens, self.eod_id))
        )
        return inputs, (to_device(labels), to_device(loss_mask))

    def take_wait_seconds(self) -> float:
        waited, self.wait_seconds = self.wait_seconds, 0.0
        return waited

    def close(self) -> None:
        """End the workers now: the DataLoader's own shutdown (a stop message to each worker, a short join), then
        SIGKILL for any worker still alive, since SIGTERM does not reach them."""
        iterator, self.iterator = self.iterator, None
        _OPEN_STREAMS.discard(self)
        workers = list(getattr(iterator, "_workers", ()))
        shutdown = getattr(iterator, "_shutdown_workers", None)  # the multi-process iterator's (torch private)
        if shutdown is not None:
            shutdown()
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()


_OPEN_STREAMS: weakref.WeakSet[BatchStream] = weakref.WeakSet()


@atexit.register
def _close_open_streams() -> None:
    """Last resort for a process that ends with a stream open (an exception, or a stream that an engine still
    references). Runs before torch's own at-exit hook, after which a DataLoader no longer shuts its workers down."""
    for stream in list(_OPEN_STREAMS):
        stream.close()


def stream_device(engine) -> torch.device:
    return torch.device(engine.device)  # DeepSpeed gives a string or a device
