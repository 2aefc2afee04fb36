"""deepy.py's one-machine launcher (neox_metala.launch.local) with small stand-in rank scripts: signals reach the
ranks and the launcher waits for their clean exit, a failed rank ends the run with its status, and no rank
outlives the launcher."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from neox_metala.launch.local import FAILURE_GRACE_SECONDS

from dist_helpers import free_port

LAUNCHER = textwrap.dedent("""
    import os, sys
    from neox_metala.launch.local import LocalRanks
    ranks = LocalRanks(sys.argv[1], sys.argv[3:], int(sys.argv[2]), "127.0.0.1", {port}, None)
    sys.exit(ranks.run(dict(os.environ)))
""")


def start_launcher(script, world_size: int, *args: str) -> subprocess.Popen:
    code = LAUNCHER.format(port=free_port())
    return subprocess.Popen(
        [sys.executable, "-c", code, str(script), str(world_size), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def write_rank_script(tmp_path, body: str):
    script = tmp_path / "rank.py"
    script.write_text(
        textwrap.dedent("""
        import os, pathlib, signal, subprocess, sys, time
        rank = int(os.environ["RANK"])
        out = pathlib.Path(sys.argv[-1])
        (out / f"started{rank}").write_text(str(os.getpid()))
    """)
        + textwrap.dedent(body)
    )
    return script


def wait_for_files(paths, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"missing after {timeout} s: {[p for p in paths if not p.exists()]}"
        time.sleep(0.05)


def rank_pids(tmp_path, world_size: int) -> list[int]:
    return [int((tmp_path / f"started{rank}").read_text()) for rank in range(world_size)]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_reaches_every_rank_and_the_launcher_waits_for_their_save(tmp_path):
    # Each rank "saves" for 3 s after SIGTERM, then exits 0; the launcher must neither kill them nor fail.
    script = write_rank_script(
        tmp_path,
        """
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        while not stop:
            time.sleep(0.05)
        time.sleep(3)
        (out / f"saved{rank}").write_text("ok")
    """,
    )
    launcher = start_launcher(script, 2, str(tmp_path))
    wait_for_files([tmp_path / "started0", tmp_path / "started1"])
    launcher.send_signal(signal.SIGTERM)
    output, _ = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, output
    assert (tmp_path / "saved0").exists() and (tmp_path / "saved1").exists()
    assert "SIGTERM: passed to every rank" in output


def test_a_sigterm_while_the_ranks_start_reaches_them(tmp_path):
    # The launcher is signalled after its first rank is up but before it has started them all (as a cluster can
    # preempt at any moment): the signal must reach the ranks, which save, and the launcher exit 0, not die of it.
    script = write_rank_script(
        tmp_path,
        """
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        (out / "ready").write_text("")
        while not stop:
            time.sleep(0.05)
        (out / "saved").write_text("ok")
    """,
    )
    code = textwrap.dedent(f"""
        import os, pathlib, signal, subprocess, sys, time
        from neox_metala.launch import local
        ready, started = pathlib.Path(sys.argv[1]) / "ready", subprocess.Popen

        def start_then_signal(*args, **kwargs):
            process = started(*args, **kwargs)
            while not ready.exists():
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGTERM)
            return process

        local.subprocess.Popen = start_then_signal
        ranks = local.LocalRanks(sys.argv[2], sys.argv[1:2], 1, "127.0.0.1", {free_port()}, None)
        sys.exit(ranks.run(dict(os.environ)))
    """)
    launcher = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0, output
    assert (tmp_path / "saved").exists()


def test_a_failed_rank_ends_the_run_and_its_stuck_peer_is_killed(tmp_path):
    # Rank 1 fails; rank 0 ignores SIGTERM and would wait forever (as an NCCL peer in a collective), with a child
    # process of its own (as a DataLoader worker): both must be gone soon after the grace period.
    script = write_rank_script(
        tmp_path,
        """
        if rank == 1:
            time.sleep(0.5)
            sys.exit(7)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        (out / "child").write_text(str(child.pid))
        time.sleep(600)
    """,
    )
    started = time.monotonic()
    launcher = start_launcher(script, 2, str(tmp_path))
    output, _ = launcher.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert launcher.returncode == 7, output
    assert "rank 1 exited with exit code 7" in output
    assert elapsed < FAILURE_GRACE_SECONDS + 10, elapsed
    wait_for_files([tmp_path / "child"])
    pids = rank_pids(tmp_path, 2) + [int((tmp_path / "child").read_text())]
    deadline = time.monotonic() + 5
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in pids)


def test_a_rank_killed_by_a_signal_gives_the_shell_status(tmp_path):
    script = write_rank_script(
        tmp_path,
        """
        if rank == 0:
            os.kill(os.getpid(), signal.SIGKILL)
    """,
    )
    launcher = start_launcher(script, 2, str(tmp_path))
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 128 + signal.SIGKILL, output
    assert "rank 0 exited with signal SIGKILL" in output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_no_rank_outlives_a_killed_launcher(tmp_path):
    script = write_rank_script(
        tmp_path,
        """
        signal.signal(signal.SIGTERM, lambda *_: ((out / f"stopped{rank}").write_text("ok"), sys.exit(0)))
        time.sleep(600)
    """,
    )
    launcher = start_launcher(script, 2, str(tmp_path))
    wait_for_files([tmp_path / "started0", tmp_path / "started1"])
    launcher.kill()
    launcher.wait()
    wait_for_files([tmp_path / "stopped0", tmp_path / "stopped1"], timeout=10)
