"""When to stop early: a preemption signal (SIGTERM, SIGUSR1 from Slurm), `exit_interval`, `exit_duration_in_mins`.

A signal only sets a flag; at the end of the current step all ranks agree through one all-reduce (any rank
signalled means everyone stops), so every rank saves the same step and exits 0 together. Slurm signals every
process of the job step, DataLoader workers included: those are started with the signals blocked (see
`preemption_signals_blocked`), so that only the trainer acts on them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time

import torch
import torch.distributed as dist

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
logger = logging.getLogger(__name__)


@contextlib.contextmanager
def preemption_signals_blocked():
    """Start child processes (DataLoader workers) inside this block: they inherit the preemption signals blocked.
    torch's workers otherwise die on a SIGTERM that their parent did not send, and the dead worker crashes the job
    before it can save. A signal that reaches this process meanwhile is delivered when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, PREEMPTION_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class StopConditions:
    """Create it first thing: a preemption signal during start-up is then honoured after the first step (saved,
    exit 0) instead of killing the process."""

    def __init__(self, exit_interval: int | None, exit_duration_in_mins: float | None):
        self.exit_interval = exit_interval
        self.deadline = time.time() + 60 * exit_duration_in_mins if exit_duration_in_mins else None
        self.signalled: str | None = None
        for sig in PREEMPTION_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        self.signalled = signal.Signals(signum).name

    def reason_to_stop(self, iteration: int) -> str | None:
        """Collective: call on every rank after every step."""
        local = 0
        if self.signalled:
            local = 1
        elif self.deadline is not None and time.time() >= self.deadline:
            local = 2
        on_gpu = dist.get_backend() == dist.Backend.NCCL  # NCCL reduces CUDA tensors only
        flag = torch.tensor([local], dtype=torch.int32, device="cuda" if on_gpu else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() == 1:
            return f"received {self.signalled or 'a preemption signal on another rank'}"
        if flag.item() == 2:
            return "exit_duration_in_mins reached"
        if self.exit_interval and iteration % self.exit_interval == 0:
            return f"exit_interval {self.exit_interval} reached"
        return None
