"""The ranks of one machine, started and watched: by deepy.py itself on a one-machine run, and by `node.py` on
every node of a multi-node pdsh run (DeepSpeed's runner starts it there, `pdsh_runner.py`).

Why not DeepSpeed's per-node launcher (launch.py): it SIGKILLs every rank 30 s after a SIGTERM (a large model's
save takes longer), exits 1 after a clean preemption stop, and a SIGTERM to its runner process leaves the ranks
training on without a parent. Here:

* SIGTERM / SIGUSR1 (preemption) and SIGINT reach every rank, which finishes its step, saves and exits 0; deepy.py
  (or the node launcher) waits for that however long the save takes and exits with the ranks' status. A second
  SIGINT kills at once.
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
import threading
import time
from dataclasses import dataclass
from typing import IO, TextIO

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
FAILURE_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LocalRanks:
    """This machine's ranks: `python -u SCRIPT --local_rank=N ARGS...` once per GPU slot (or CPU process), with
    the environment DeepSpeed's per-node launcher (deepspeed/launcher/launch.py, 0.19.8) gives them. On one
    machine they are the whole world; a node of a multi-node run (`node.py`) holds global ranks
    `first_rank .. first_rank + local_world_size - 1`."""

    script: str
    script_args: list[str]
    world_size: int
    master_addr: str
    master_port: int
    gpu_slots: list[int] | None  # this machine's CUDA device ids in local-rank order; None: CPU, world_size ranks
    first_rank: int = 0  # the ranks of the nodes before this one
    node_rank: int = 0
    num_nodes: int = 1
    interpreter: tuple[str, ...] = (sys.executable, "-u")  # launch.py's --module adds "-m", --no_python drops it
    pass_local_rank: bool = True  # launch.py's --no_local_rank turns it off
    name: str = "deepy.py"  # who speaks in the messages

    @property
    def local_world_size(self) -> int:
        return self.world_size if self.gpu_slots is None else len(self.gpu_slots)

    def rank_command(self, local_rank: int) -> list[str]:
        local_rank_argument = [f"--local_rank={local_rank}"] if self.pass_local_rank else []
        return [*self.interpreter, self.script, *local_rank_argument, *self.script_args]

    def rank_environment(self, local_rank: int, environ: dict[str, str]) -> dict[str, str]:
        env = {
            **environ,
            "RANK": str(self.first_rank + local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
            # DeepSpeed reads these (CPU device count; its fast checkpoint writer's machine layout).
            "LOCAL_SIZE": str(self.local_world_size),
            "CROSS_RANK": str(self.node_rank),
            "CROSS_SIZE": str(self.num_nodes),
        }
        if self.gpu_slots is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpu_slots))  # LOCAL_RANK indexes into these
        return env

    def run(self, environ: dict[str, str], relay_output: bool = False) -> int:
        """Start every rank, pass signals on, and return the run's exit status once every rank has ended.

        relay_output: the ranks write into pipes that this process copies to its own stdout/stderr, dropping what
        it can no longer write. Under pdsh that output is an ssh connection, closed when pdsh is stopped or the
        node shuts down, and a rank writing into it directly would fail (BrokenPipeError) in the middle of its
        preemption save."""
        pipe = subprocess.PIPE if relay_output else None
        # handlers first: a signal while the ranks start (a rank may already be up) must reach them, not end us
        supervisor = _Supervisor(self.first_rank, self.name)
        processes = [
            subprocess.Popen(
                self.rank_command(local_rank),
                env=self.rank_environment(local_rank, environ),
                stdout=pipe,
                stderr=pipe,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            for local_rank in range(self.local_world_size)
        ]
        relays = [
            _start_relay(stream, target)
            for process in processes
            if relay_output
            for stream, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr))
        ]
        supervisor.start(processes)
        status = supervisor.wait()
        for relay in relays:
            relay.join(timeout=5)  # a rank's leftover child may hold the pipe open: never wait on it forever
        return status


class _Supervisor:
    def __init__(self, first_rank: int, name: str):
        self.processes: list[subprocess.Popen] | None = None  # None until every rank is started
        self.pending: list[int] = []  # signals received before that
        self.first_rank = first_rank
        self.name = name
        self.interrupts = 0
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._forward)

    def start(self, processes: list[subprocess.Popen]) -> None:
        """Watch these ranks, and pass on what arrived while they were being started."""
        self.processes = processes
        while self.pending:
            self._forward(self.pending.pop(0), None)

    def _forward(self, signum, _frame) -> None:
        if self.processes is None:
            self.pending.append(signum)
            return
        self.interrupts += signum == signal.SIGINT
        if self.interrupts >= 2:
            _say(f"{self.name}: second interrupt: killing every rank")
            self._kill_all()
            return
        _say(f"{self.name}: {signal.Signals(signum).name}: passed to every rank (they save and stop)")
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
                    (
                        (self.first_rank + local_rank, p.returncode)
                        for local_rank, p in enumerate(self.processes)
                        if p.returncode not in (None, 0)
                    ),
                    None,
                )
                if failed is not None:
                    _say(
                        f"{self.name}: rank {failed[0]} exited with {_describe(failed[1])}"
                        + ("; stopping the other ranks" if running else "")
                    )
                    deadline = time.monotonic() + FAILURE_GRACE_SECONDS
            if not running:
                return 0 if failed is None else _exit_status(failed[1])
            if deadline is not None and time.monotonic() >= deadline:
                self._kill_all()
                deadline = None
            time.sleep(POLL_SECONDS)


def _start_relay(source: IO[bytes], target: TextIO) -> threading.Thread:
    thread = threading.Thread(target=_relay, args=(source, target), daemon=True)
    thread.start()
    return thread


def _relay(source: IO[bytes], target: TextIO) -> None:
    """Copy a rank's output until the rank closes it; keep reading after our own output is gone."""
    for chunk in iter(lambda: source.read1(1 << 16), b""):
        try:
            target.buffer.write(chunk)
            target.buffer.flush()
        except OSError:
            _discard_output(target)


def _say(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:
        _discard_output(sys.stderr)


def _discard_output(stream: TextIO) -> None:
    """Point a dead stdout/stderr (closed pipe or ssh connection) at /dev/null: later writes, and the flush at
    interpreter exit (which would turn exit status 0 into 120), then succeed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when its parent (deepy.py) dies (Linux; elsewhere a no-op)."""
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
