"""deepy.py's multi-node pdsh launch as DeepSpeed's runner would run it, built without pdsh: for the tests of the
node launcher (tests/launch) and of multi-node preemption (tests/training)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from neox_metala.launch.command import runner_command


def world_info(hosts: dict[str, list[int]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(hosts).encode()).decode()


def pdsh_commands(args, resources, user_script: str) -> tuple[list[str], list[str], list[str]]:
    """(pdsh arguments, the command pdsh runs on each node, the runner's kill command), as deepy.py's runner builds
    them: DeepSpeed's runner argument parser and its PDSHRunner code, with our get_cmd, without running pdsh."""
    from deepspeed.launcher import runner as deepspeed_runner

    from neox_metala.launch.pdsh_runner import NodeLauncherPDSHRunner

    command = runner_command(args, resources, user_script)
    assert command[1:4] == ["-u", "-m", "neox_metala.launch.pdsh_runner"]
    runner_args = deepspeed_runner.parse_args(command[4:])
    backend = NodeLauncherPDSHRunner(runner_args, deepspeed_runner.encode_world_info(resources.hosts))
    node_command, kill_command, _ = backend.get_cmd({}, resources.hosts)
    pdsh_arguments = kill_command[:-1]
    assert node_command[: len(pdsh_arguments)] == pdsh_arguments and pdsh_arguments[0] == "pdsh"
    return pdsh_arguments, node_command[len(pdsh_arguments) :], kill_command


def two_node_config(tmp_path: Path, settings: str) -> list[str]:
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=1\nnode-b slots=1\n")
    launch = tmp_path / "launch.yml"
    launch.write_text(f"hostfile: {hostfile}\nlauncher: pdsh\nmaster_addr: 127.0.0.1\n{settings}")
    return [str(launch)]
