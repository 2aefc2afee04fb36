"""Timing of one GPU kernel call for the per-kernel benchmarks (bench/core.py, bench/conv.py): the median of CUDA-event
times with the L2 cache flushed before each run, and the copy bandwidth that byte floors are measured against.
Without a GPU (the benchmarks' --smoke runs through the Triton interpreter) a call is timed once by the clock."""

from __future__ import annotations

import statistics
import time

import torch


def median_ms(call, warmup: int, runs: int, cuda: bool = True) -> float:
    if not cuda:
        start = time.perf_counter()
        call()
        return (time.perf_counter() - start) * 1e3
    flush = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")  # more than an H200's L2
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        flush.random_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def copy_bandwidth(cuda: bool = True) -> float:
    """Bytes/s of a large device copy (read + write counted); the H200's nominal figure without a GPU."""
    if not cuda:
        return 4.8e12
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    return 2 * src.numel() / (median_ms(lambda: dst.copy_(src), 3, 10) / 1e3)
