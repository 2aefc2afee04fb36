"""The per-node launcher of multi-node pdsh runs (neox_metala.launch.node) and the runner that puts it on every
node (neox_metala.launch.pdsh_runner): its ranks get DeepSpeed launch.py's environment (compared with launch.py
itself), the pdsh command DeepSpeed's PDSHRunner builds runs it, its ranks survive a closed output connection,
DeepSpeed's runner itself starts the node launchers (pdsh and ssh replaced by stand-ins) and, on SIGTERM, waits
for their save (the end-to-end run of two train.py nodes: tests/training/test_node_preemption.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from neox_metala.config import load_config
from neox_metala.launch.command import launch_environment, runner_command
from neox_metala.launch.node import MODULE
from neox_metala.launch.resources import plan_resources

from dist_helpers import free_port
from pdsh_helpers import pdsh_commands, two_node_config, world_info

REPO = Path(__file__).resolve().parents[2]
RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "CUDA_VISIBLE_DEVICES",
    "LOCAL_SIZE",
    "CROSS_RANK",
    "CROSS_SIZE",
)


def test_ranks_get_deepspeed_launchers_environment_and_arguments(tmp_path):
    """The second of two 2-slot nodes, once under DeepSpeed's launch.py and once under ours, with a script that
    records what each rank sees: the same variables (train.py and DeepSpeed read them) and arguments."""
    script = tmp_path / "report.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, os, sys
        report = {{key: os.environ.get(key) for key in {RANK_VARIABLES!r}}}
        with open(sys.argv[-1] + "." + os.environ["RANK"], "w") as out:
            json.dump({{"env": report, "argv": sys.argv[1:-1]}}, out)
    """)
    )
    arguments = [
        f"--world_info={world_info({'node-a': [0, 1], 'node-b': [2, 3]})}",
        "--node_rank=1",
        "--master_addr=10.1.2.3",
        "--master_port=29611",
        str(script),
        "--neox-config-b64",
        "e30=",
    ]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(REPO)}
    reports = {}
    for launcher in ("deepspeed.launcher.launch", MODULE):
        out = tmp_path / launcher
        subprocess.run([sys.executable, "-m", launcher, *arguments, str(out)], env=env, check=True, timeout=120)
        reports[launcher] = {rank: json.loads(Path(f"{out}.{rank}").read_text()) for rank in (2, 3)}
    assert reports[MODULE] == reports["deepspeed.launcher.launch"]
    assert reports[MODULE][3]["env"]["LOCAL_RANK"] == "1" and reports[MODULE][3]["env"]["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_pdsh_runs_our_node_launcher_with_deepspeeds_arguments(tiny_yaml, tmp_path):
    args = load_config([tiny_yaml, *two_node_config(tmp_path, "master_port: 29612\n")])
    resources = plan_resources(args.launcher, args.source_of)
    args.resolve(resources.world_size)
    pdsh_arguments, node_command, kill_command = pdsh_commands(args, resources, "train.py")
    assert pdsh_arguments[pdsh_arguments.index("-w") + 1] == "node-a,node-b"
    encoded = world_info({"node-a": [0], "node-b": [0]})
    start = node_command.index(sys.executable)
    assert node_command[start:-1] == [
        sys.executable,
        "-u",
        "-m",
        MODULE,
        f"--world_info={encoded}",
        "--node_rank=%n",  # pdsh puts the node's index here
        "--master_addr=127.0.0.1",
        "--master_port=29612",
        "--enable_each_rank_log=None",  # the runner's default, always passed: "no per-rank logs"
        "train.py",
        "--neox-config-b64",
    ]
    assert "PYTHONPATH" in launch_environment(args, resources, {})  # node.py imports on every host
    # The kill command's pattern finds a node launcher's command line, not the shells that hold the same words.
    pattern = re.search(r"pgrep -f '([^']+)'", kill_command[-1]).group(1)
    launched = " ".join(node_command[start:]).replace("%n", "1")
    assert re.search(pattern, launched)
    assert not re.search(pattern, "bash -c " + " ".join(node_command).replace("%n", "1"))
    assert not re.search(pattern, "bash -c " + kill_command[-1])
    assert not re.search(pattern, launched.replace("--master_port=29612", "--master_port=29613"))  # another job


def test_ranks_keep_saving_after_the_output_connection_closes(tmp_path):
    """pdsh stopped or the node shutting down closes the node launcher's stdout/stderr (the ssh connection): a
    rank printing during its save must not fail (BrokenPipeError), and the node exits 0."""
    script = tmp_path / "rank.py"
    script.write_text(
        textwrap.dedent("""
        import pathlib, signal, sys, time
        out = pathlib.Path(sys.argv[-1])
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        (out / "started").write_text("")
        while not stop:
            time.sleep(0.05)
        for _ in range(40):  # the save, talking
            print("saving", flush=True)
            print("still saving", file=sys.stderr, flush=True)
            time.sleep(0.05)
        (out / "saved").write_text("")
    """)
    )
    node = subprocess.Popen(
        [sys.executable, "-m", MODULE, f"--world_info={world_info({'here': [0]})}", str(script), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert node.poll() is None and time.monotonic() < deadline, node.communicate()
        time.sleep(0.05)
    node.stdout.close()
    node.stderr.close()
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=30) == 0
    assert (tmp_path / "saved").exists()


FAKE_PDSH = """#!/bin/bash
# pdsh's part, on this machine: `pdsh -S -f N -w HOST,HOST... WORDS...` runs WORDS through a shell once per host,
# %n replaced by the host's index, and exits with the largest status.
shift; shift 2; IFS=, read -ra hosts <<< "$2"; shift 2
command="$*"; pids=()
for index in "${!hosts[@]}"; do bash -c "${command//%n/$index}" & pids+=($!); done
status=0; for pid in "${pids[@]}"; do wait "$pid" || status=$?; done; exit $status
"""


def test_deepspeeds_runner_starts_our_node_launchers_and_waits_for_their_save_on_sigterm(tiny_yaml, tmp_path):
    """deepy.py's runner command, run for real (DeepSpeed's runner.main with our backend) with pdsh and ssh replaced
    by stand-ins that run each "host" here, from a folder outside the repository: every node's ranks start under
    node.py; SIGTERM to the runner (as to deepy.py) reaches them through the runner's kill command, and the runner
    ends only after their 3 s save (with DeepSpeed's exit status 1)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pdsh").write_text(FAKE_PDSH)
    (bin_dir / "ssh").write_text("#!/bin/bash\nexit 0\n")  # the runner's reachability check
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    script = tmp_path / "rank.py"
    script.write_text(
        textwrap.dedent("""
        import os, pathlib, signal, time
        out = pathlib.Path(os.environ["RANK_OUT"])
        rank = os.environ["RANK"]
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        (out / f"started{rank}").write_text(os.environ["CROSS_RANK"])
        while not stop:
            time.sleep(0.05)
        time.sleep(3)
        (out / f"saved{rank}").write_text("")
    """)
    )
    args = load_config([tiny_yaml, *two_node_config(tmp_path, f"master_port: {free_port()}\n")])
    resources = plan_resources(args.launcher, args.source_of)
    command = runner_command(args.resolve(resources.world_size), resources, str(script))
    env = launch_environment(args, resources, {**os.environ, "PYTHONPATH": "", "DS_ACCELERATOR": "cpu"})
    env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", RANK_OUT=str(tmp_path))
    runner = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"started{rank}").exists() for rank in (0, 1)):
            assert runner.poll() is None and time.monotonic() < deadline, runner.returncode
            time.sleep(0.05)
        assert [(tmp_path / f"started{rank}").read_text() for rank in (0, 1)] == ["0", "1"]  # node ranks
        signalled = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 1
        assert time.monotonic() - signalled >= 3
        assert all((tmp_path / f"saved{rank}").exists() for rank in (0, 1))
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
