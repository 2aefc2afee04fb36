"""One node's ranks of a multi-node pdsh run: what DeepSpeed's runner starts on every host in place of
`deepspeed.launcher.launch`, with the same command line (`pdsh_runner.py` makes the swap):

    python -u -m neox_metala.launch.node --world_info=B64 --node_rank=%n --master_addr=A --master_port=P \\
        train.py --neox-config-b64 ...

DeepSpeed's launch.py, on SIGTERM or SIGINT, terminates every rank and SIGKILLs what is left 30 s later, then
exits 1: a preemption save longer than that is cut and the job reports failure. Here the ranks are started and
watched by `local.py`'s supervisor, the one definition of the rules: SIGTERM / SIGUSR1 / SIGINT reach every
rank, which saves and stops however long that takes, and the node exits 0; a failed rank ends the node with its
status; no rank outlives the node process. Each rank gets launch.py's environment (RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR/PORT, CUDA_VISIBLE_DEVICES from the node's world_info slots, LOCAL_SIZE, CROSS_RANK/SIZE) and
`--local_rank=N`. One difference: LOCAL_RANK is the rank's index on its node, where launch.py computes
`global rank % ranks on this node` (the same whenever every node has as many ranks).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

from .local import LocalRanks

MODULE = "neox_metala.launch.node"
DEEPSPEED_DEFAULT_PORT = 29500  # deepspeed.constants.TORCH_DISTRIBUTED_DEFAULT_PORT, without importing deepspeed

# launch.py options that deepy.py never passes and this launcher does not implement: refused, not ignored.
UNSUPPORTED = {
    "save_pid": "--save_pid (DeepSpeed's pid file for its own tooling)",
    "enable_each_rank_log": "--enable_each_rank_log (one log file per rank)",
    "bind_cores_to_rank": "--bind_cores_to_rank (numactl core binding)",
    "bind_core_list": "--bind_core_list (numactl core binding)",
}


def _node_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="Start and watch this node's ranks of a multi-node run (DeepSpeed launch.py's command line); "
        "signals reach every rank, which saves and stops however long that takes.",
    )
    parser.add_argument("--world_info", required=True, help="base64 JSON: host -> its GPU slots, in node order")
    parser.add_argument("--node_rank", type=int, default=0, help="this node's index in world_info")
    parser.add_argument("--master_addr", default="127.0.0.1")
    parser.add_argument("--master_port", type=int, default=DEEPSPEED_DEFAULT_PORT)
    parser.add_argument("--module", action="store_true", help="run the script as `python -m`")
    parser.add_argument("--no_python", action="store_true", help="execute the script itself, not with python")
    parser.add_argument("--no_local_rank", action="store_true", help="do not pass --local_rank=N to the script")
    # Only the launcher's own logging, which this one does not have: accepted so that the command line stays
    # DeepSpeed's.
    parser.add_argument("--log_level", choices=["debug", "info", "warning", "error", "critical"], default="info")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--save_pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--enable_each_rank_log", default="None", help=argparse.SUPPRESS)
    parser.add_argument("--bind_cores_to_rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bind_core_list", default=None, help=argparse.SUPPRESS)
    parser.add_argument("training_script")
    parser.add_argument("training_script_args", nargs=argparse.REMAINDER)
    return parser


def node_ranks(argv: list[str] | None = None) -> LocalRanks:
    """This node's ranks for launch.py's command line; a command line it cannot honour is an argparse error."""
    parser = _node_parser()
    options = parser.parse_args(argv)
    given = [text for key, text in UNSUPPORTED.items() if getattr(options, key) not in (0, "None", False, None)]
    if given:
        parser.error(
            f"{', '.join(given)}: not supported by deepy.py's node launcher; deepy.py never passes it "
            f"(use `python -m deepspeed.launcher.launch` for it)"
        )
    if options.module and options.no_python:
        parser.error("--module and --no_python cannot be combined (as in DeepSpeed's launch.py)")
    try:
        world_info = json.loads(base64.urlsafe_b64decode(options.world_info))
        slots_per_node = [list(map(int, slots)) for slots in world_info.values()]
    except (ValueError, TypeError, AttributeError) as error:
        parser.error(f"--world_info is not base64 JSON of host -> slot list: {error}")
    if not 0 <= options.node_rank < len(slots_per_node):
        parser.error(f"--node_rank={options.node_rank} but world_info lists {len(slots_per_node)} node(s)")
    interpreter = () if options.no_python else (sys.executable, "-u", *(["-m"] if options.module else []))
    return LocalRanks(
        options.training_script,
        options.training_script_args,
        world_size=sum(map(len, slots_per_node)),
        master_addr=options.master_addr,
        master_port=options.master_port,
        gpu_slots=slots_per_node[options.node_rank],  # launch.py sets CUDA_VISIBLE_DEVICES on CPU runs too
        first_rank=sum(map(len, slots_per_node[: options.node_rank])),
        node_rank=options.node_rank,
        num_nodes=len(slots_per_node),
        interpreter=interpreter,
        pass_local_rank=not options.no_local_rank,
        name=f"node {options.node_rank}",
    )


def main(argv: list[str] | None = None) -> int:
    return node_ranks(argv).run(dict(os.environ), relay_output=True)


if __name__ == "__main__":
    sys.exit(main())
