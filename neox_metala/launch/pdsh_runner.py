"""DeepSpeed's multi-node runner (deepspeed.launcher.runner, 0.19.8) with one change to its pdsh backend: every
node runs `python -m neox_metala.launch.node` (this project's supervisor, `node.py`) where DeepSpeed runs its own
`deepspeed.launcher.launch`, which cuts a preemption save after 30 s. deepy.py execs

    python -u -m neox_metala.launch.pdsh_runner RUNNER-ARGS train.py --neox-config-b64 ...

with exactly the arguments of `python -m deepspeed.launcher.runner`. Everything else is DeepSpeed's: the
hostfile, include/exclude, the exported environment, pdsh's command line, the other backends.

The runner, on SIGTERM or SIGINT, stops pdsh and then runs a "kill command" on every node over pdsh (DeepSpeed's:
`pkill -f` of its launch module), waits for it, and exits 1. Ours sends SIGTERM to this job's node launchers and
waits for them to end, so the head process lives until every node has saved (its exit status stays DeepSpeed's
1).
"""

from __future__ import annotations

import shlex
import sys

from deepspeed.launcher import runner
from deepspeed.launcher.constants import PDSH_LAUNCHER
from deepspeed.launcher.multinode_runner import PDSHRunner

from .node import MODULE as NODE_MODULE

DEEPSPEED_NODE_MODULE = "deepspeed.launcher.launch"


class NodeLauncherPDSHRunner(PDSHRunner):
    """PDSHRunner whose per-node command runs node.py (same arguments) and whose kill command waits for it."""

    def get_cmd(self, environment, active_resources):
        command, deepspeed_kill_command, environment = super().get_cmd(environment, active_resources)
        if command.count(DEEPSPEED_NODE_MODULE) != 1:
            raise RuntimeError(
                f"DeepSpeed's pdsh command no longer names {DEEPSPEED_NODE_MODULE} once (DeepSpeed upgraded?): "
                f"{command}; neox_metala/launch/pdsh_runner.py must be updated"
            )
        command[command.index(DEEPSPEED_NODE_MODULE)] = NODE_MODULE
        pdsh_arguments = deepspeed_kill_command[:-2]  # DeepSpeed's: pdsh ... + ["pkill -f ", its pattern]
        return command, pdsh_arguments + [self.stop_and_wait_command()], environment

    def stop_and_wait_command(self) -> str:
        """Shell command for every node: SIGTERM this job's node launcher, then wait until it has ended."""
        pattern = shlex.quote(node_process_pattern(self.world_info_base64, self.args.master_port))
        return f"pkill -TERM -f {pattern}; while pgrep -f {pattern} >/dev/null; do sleep 1; done"


def node_process_pattern(world_info_base64: str, master_port: int) -> str:
    """An extended regex for `pgrep -f` matching this job's node launchers (same hosts, same port) by their
    command line's start, `PYTHON -u -m neox_metala.launch.node --world_info=...`: not the remote shells, whose
    command lines (`bash -c "...; PYTHON -u -m ..."`, `bash -c "pkill -f PATTERN..."`) hold the same words later
    on. base64url has no regex characters."""
    return (
        f"^[^ ]+ -u -m {NODE_MODULE.replace('.', '[.]')} --world_info={world_info_base64} "
        f"--node_rank=[0-9]+ --master_addr=[^ ]+ --master_port={master_port}( |$)"
    )


def main(argv: list[str] | None = None) -> None:
    runner.PDSHRunner = NodeLauncherPDSHRunner  # runner.main() picks the backend class by these names
    runner.LAUNCHER_CLASSES[PDSH_LAUNCHER] = NodeLauncherPDSHRunner
    runner.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
