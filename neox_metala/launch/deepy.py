"""deepy.py: validate the YAML files, work out the world, and start train.py on every rank.

    python deepy.py train.py -d configs metala-1B.yml local_setup.yml [--dry-run]

One machine: deepy.py starts and watches the ranks itself (`local.py`: signals passed on, a failed rank ends the
run, exit status of the ranks). Several machines (hostfile, Slurm, MPI): DeepSpeed's runner is exec'd; with pdsh
it starts `node.py` on every node, which watches that node's ranks by the same rules.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from ..config import ConfigError, NeoXArgs, load_config
from ..config.data_check import check_data_settings
from ..config.evaluation import eval_task_manager
from .command import describe, launch_environment, runner_command
from .local import LocalRanks
from .resources import LaunchResources, plan_resources
from .train_args import CONFIG_ARGUMENT, encode_config


def _deepy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepy.py",
        description="Validate NeoX-style YAML configs and launch USER_SCRIPT on every rank: "
        "local processes on one machine (CPU processes with gloo when no GPU is visible), DeepSpeed's runner "
        "(pdsh/slurm/MPI) on several.",
    )
    parser.add_argument("user_script", help="script every rank runs, e.g. train.py")
    parser.add_argument("conf_files", nargs="+", help="YAML files, merged as a union (a key in two is an error)")
    parser.add_argument("-d", "--conf_dir", "--conf-dir", default=None, help="directory the YAML files are in")
    parser.add_argument(
        "--dry-run",
        "--dry_run",
        action="store_true",
        help="print the resolved world and the launch command, and exit without launching",
    )
    return parser


def local_ranks(args: NeoXArgs, resources: LaunchResources, user_script: str) -> LocalRanks:
    (slots,) = resources.hosts.values()
    return LocalRanks(
        user_script,
        [CONFIG_ARGUMENT, encode_config(args)],
        resources.world_size,
        args.launcher.master_addr or "127.0.0.1",
        args.launcher.master_port,
        None if resources.use_cpu else slots,
    )


def deepy_main(argv: list[str] | None = None) -> int:
    """deepy.py: the run's exit status (one machine), or no return (DeepSpeed's runner replaces this process)."""
    options = _deepy_parser().parse_intermixed_args(argv)
    try:
        args = load_config(options.conf_files, options.conf_dir)
        if os.path.basename(options.user_script) == "train.py":  # generation/evaluation scripts read no data
            check_data_settings(args)  # the config-only part; the files are checked where they are read
            eval_task_manager(args)  # the eval_tasks names (their data is loaded where training runs)
        resources = plan_resources(args.launcher, args.source_of)
        args.resolve(resources.world_size)
    except ConfigError as error:
        print(f"deepy.py: error: {error}", file=sys.stderr)
        return 2
    env = launch_environment(args, resources, dict(os.environ))
    print(
        f"deepy.py: {describe(resources)} data_parallel_size={args.derived.data_parallel_size} "
        f"train_batch_size={args.training.train_batch_size}",
        flush=True,
    )
    env_note = "DS_ACCELERATOR=cpu " if resources.use_cpu else ""
    if resources.num_nodes == 1:
        ranks = local_ranks(args, resources, options.user_script)
        if options.dry_run:
            print(
                f"deepy.py: rank command (local ranks 0..{ranks.world_size - 1}): {env_note}"
                f"{shlex.join(ranks.rank_command(0)).replace('--local_rank=0', '--local_rank=N')}"
            )
            return 0
        return ranks.run(env)
    command = runner_command(args, resources, options.user_script)
    if options.dry_run:
        print(f"deepy.py: launcher command: {env_note}{shlex.join(command)}")
        return 0
    os.execve(command[0], command, env)
    return 0  # not reached
