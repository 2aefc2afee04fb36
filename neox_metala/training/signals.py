"""When to stop early: a preemption signal (SIGTERM, SIGUSR1 from Slurm), `exit_interval`, `exit_duration_in_mins`.

A signal only sets a flag; at the end of the current step all ranks agree through one all-reduce (any rank
signalled means everyone stops), so every rank saves the same step and exits 0 together.
"""

from __future__ import annotations

import logging
import signal
import time

import torch
import torch.distributed as dist

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
logger = logging.getLogger(__name__)


class StopConditions:
    def __init__(self, exit_interval: int | None, exit_duration_in_mins: float | None, device):
        self.exit_interval = exit_interval
        self.deadline = time.time() + 60 * exit_duration_in_mins if exit_duration_in_mins else None
        self.device = device
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
        flag = torch.tensor([local], dtype=torch.int32, device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() == 1:
            return f"received {self.signalled or 'a preemption signal on another rank'}"
        if flag.item() == 2:
            return "exit_duration_in_mins reached"
        if self.exit_interval and iteration % self.exit_interval == 0:
            return f"exit_interval {self.exit_interval} reached"
        return None
