"""The ranks of a one-machine run, started and watched by deepy.py itself (multi-node runs go through DeepSpeed's
runner, `command.py`).

Why not DeepSpeed's local launcher: it SIGKILLs every rank 30 s after a SIGTERM (a large model's save takes
longer), exits 1 after a clean preemption stop, and a SIGTERM to its runner process leaves the ranks training on
without a parent. Here:

* SIGTERM / SIGUSR1 (preemption) and SIGINT reach every rank, which finishes its step, saves and exits 0; deepy.py
  waits for that however long the save takes and exits with the ranks' status. A second SIGINT kills at once.
* A rank that fails (non-zero exit or killed) ends the run: the others get `FAILURE_GRACE_SECONDS` to fail by
  themselves (gloo peers see the closed connection at once; NCCL peers would wait in a collective until its
  timeout), then they are killed together with their DataLoader workers; deepy.py exits with the failed rank's
  status, so a scheduler sees the failure.
* No rank outlives deepy.py: each is started with PR_SET_PDEATHSIG = SIGTERM (Linux), so even a SIGKILLed
  deepy.py leaves ranks that save and stop rather than train on unwatched.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
FAILURE_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LocalRanks:
    """`world_size` processes of `python -u SCRIPT --local_rank=N ARGS...` on this machine, one per GPU slot (or
    CPU process), with torch.distributed's environment variables."""

    script: str
    script_args: list[str]
    world_size: int
    master_addr: str
    master_port: int
    gpu_slots: list[int] | None  # CUDA device ids in rank order; None on CPU

    def rank_command(self, rank: int) -> list[str]:
        return [sys.executable, "-u", self.script, f"--local_rank={rank}", *self.script_args]

    def rank_environment(self, rank: int, environ: dict[str, str]) -> dict[str, str]:
        env = {
            **environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_WORLD_SIZE": str(self.world_size),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }
        if self.gpu_slots is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpu_slots))  # LOCAL_RANK indexes into these
        return env

    def run(self, environ: dict[str, str]) -> int:
        """Start every rank, pass signals on, and return the run's exit status once every rank has ended."""
        processes = [
            subprocess.Popen(
                self.rank_command(rank),
                env=self.rank_environment(rank, environ),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            for rank in range(self.world_size)
        ]
        return _Supervisor(processes).wait()


class _Supervisor:
    def __init__(self, processes: list[subprocess.Popen]):
        self.processes = processes
        self.interrupts = 0
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._forward)

    def _forward(self, signum, _frame) -> None:
        self.interrupts += signum == signal.SIGINT
        if self.interrupts >= 2:
            print("deepy.py: second interrupt: killing every rank", file=sys.stderr, flush=True)
            self._kill_all()
            return
        print(
            f"deepy.py: {signal.Signals(signum).name}: passed to every rank (they save and stop)",
            file=sys.stderr,
            flush=True,
        )
        for process in self._running():
            _signal_quietly(process.pid, signum)

    def _running(self) -> list[subprocess.Popen]:
        return [process for process in self.processes if process.poll() is None]

    def _kill_all(self) -> None:
        for process in self._running():
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the rank and its DataLoader workers
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        failed: tuple[int, int] | None = None  # (rank, status) of the first failure
        deadline = None
        while True:
            running = self._running()
            if failed is None:
                failed = next(
                    ((rank, p.returncode) for rank, p in enumerate(self.processes) if p.returncode not in (None, 0)),
                    None,
                )
                if failed is not None:
                    print(
                        f"deepy.py: rank {failed[0]} exited with {_describe(failed[1])}"
                        + ("; stopping the other ranks" if running else ""),
                        file=sys.stderr,
                        flush=True,
                    )
                    deadline = time.monotonic() + FAILURE_GRACE_SECONDS
            if not running:
                return 0 if failed is None else _exit_status(failed[1])
            if deadline is not None and time.monotonic() >= deadline:
                self._kill_all()
                deadline = None
            time.sleep(POLL_SECONDS)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when deepy.py dies (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _signal_quietly(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _describe(returncode: int) -> str:
    return f"signal {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # a shell's convention for a signalled process
