"""Run a test worker in N real gloo processes (torch.multiprocessing spawn) and collect what each returns."""

from __future__ import annotations

import os
import socket
import traceback

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank, world_size, port, result_dir, worker, kwargs):
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        DS_ACCELERATOR="cpu",
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    try:
        result = worker(rank=rank, world_size=world_size, **kwargs)
        torch.save(result, os.path.join(result_dir, f"rank{rank}.pt"))
    except BaseException:
        with open(os.path.join(result_dir, f"rank{rank}.error"), "w") as f:
            f.write(traceback.format_exc())
        raise
    finally:
        from neox_metala import parallel

        parallel.destroy()


def run_workers(worker, world_size: int, result_dir, **kwargs) -> list:
    """Start `worker(rank=, world_size=, **kwargs)` in `world_size` processes; return their results by rank."""
    result_dir = str(result_dir)
    os.makedirs(result_dir, exist_ok=True)
    try:
        mp.start_processes(
            _entry, args=(world_size, free_port(), result_dir, worker, kwargs), nprocs=world_size, start_method="spawn"
        )
    except mp.ProcessRaisedException as error:
        raise AssertionError(f"a worker failed:\n{error}") from None
    return [torch.load(os.path.join(result_dir, f"rank{r}.pt"), weights_only=False) for r in range(world_size)]
