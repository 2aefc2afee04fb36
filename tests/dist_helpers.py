"""Run a test worker in N real gloo processes and collect what each returns.

The processes come from a fork server that has imported torch, DeepSpeed, megatron-core and the trainer once per
pytest worker: each rank is still a fresh process that has run nothing (forked from a server that only imported),
with the test process's environment, working directory and sys.path, but it starts in a fraction of a second
instead of the several seconds that importing those packages takes on 2 CI cores (`spawn` paid that per rank).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import traceback

import torch
import torch.multiprocessing as mp

from neox_metala.parallel import cpu_rank_environment, free_port  # noqa: F401 (free_port: for the tests)

# Imported once in the fork server (before its first fork); a module that fails to import here is simply imported
# by the rank itself, as under `spawn`.
PRELOAD = ["torch", "deepspeed", "neox_metala.training.trainer"]
PORT_ATTEMPTS = 3
multiprocessing.set_forkserver_preload(PRELOAD)


def _entry(rank, world_size, port, result_dir, environ, worker, kwargs):
    # The fork server's environment is the one it started with: give the rank the test process's current one.
    os.environ.clear()
    os.environ.update(environ)
    os.environ.update(cpu_rank_environment(rank, world_size, port), OMP_NUM_THREADS="1")
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


@contextlib.contextmanager
def _gpus_hidden():
    """On a GPU machine: its preloaded imports may initialise CUDA (DeepSpeed probes the accelerator), which the
    ranks forked from it would inherit, whatever their own environment says; the ranks are CPU ranks."""
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def run_workers(worker, world_size: int, result_dir, **kwargs) -> list:
    """Start `worker(rank=, world_size=, **kwargs)` in `world_size` processes; return their results by rank."""
    result_dir = str(result_dir)
    os.makedirs(result_dir, exist_ok=True)
    for attempt in range(PORT_ATTEMPTS):
        arguments = (world_size, free_port(), result_dir, dict(os.environ), worker, kwargs)
        try:
            with _gpus_hidden():  # the fork server, started by the first call, keeps the environment it starts with
                mp.start_processes(_entry, args=arguments, nprocs=world_size, start_method="forkserver")
            break
        except mp.ProcessRaisedException as error:
            # free_port's port is free when chosen, not when rank 0 binds it: the other pytest worker's ranks and
            # their connections take ports from the same range meanwhile (seen once in CI). Only then: again.
            if "EADDRINUSE" in str(error) and attempt + 1 < PORT_ATTEMPTS:
                continue
            raise AssertionError(f"a worker failed:\n{error}") from None
    return [torch.load(os.path.join(result_dir, f"rank{r}.pt"), weights_only=False) for r in range(world_size)]
