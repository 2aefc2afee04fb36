"""Command lines: deepy.py (validate, work out the world, exec DeepSpeed's runner) and train.py's arguments.

    python deepy.py train.py -d configs metala-1B.yml local_setup.yml [--dry-run]
    # every rank then runs: train.py --neox-config-b64 <config> --local_rank=N
    torchrun --nproc_per_node 2 train.py -d configs tiny.yml      # also works: train.py reads YAML itself
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, MutableMapping

from .args import NeoXArgs, load_config
from .errors import ConfigError
from .launch_command import CONFIG_ARGUMENT, decode_config, describe, launch_environment, runner_command
from .resources import plan_resources


def _deepy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepy.py", description="Validate NeoX-style YAML configs and launch USER_SCRIPT on every rank "
        "through DeepSpeed's runner (pdsh/slurm/MPI multi-node, local processes on one machine, CPU processes "
        "with gloo when no GPU is visible).")
    parser.add_argument("user_script", help="script every rank runs, e.g. train.py")
    parser.add_argument("conf_files", nargs="+", help="YAML files, merged as a union (a key in two is an error)")
    parser.add_argument("-d", "--conf_dir", "--conf-dir", default=None, help="directory the YAML files are in")
    parser.add_argument("--dry-run", "--dry_run", action="store_true",
                        help="print the resolved world and the launcher command, and exit without launching")
    return parser


def deepy_main(argv: list[str] | None = None) -> int:
    """deepy.py: returns an exit status for --dry-run and errors; otherwise replaces this process."""
    options = _deepy_parser().parse_intermixed_args(argv)
    try:
        args = load_config(options.conf_files, options.conf_dir)
        resources = plan_resources(args.launcher, args.source_of)
        args.resolve(resources.world_size)
    except ConfigError as error:
        print(f"deepy.py: error: {error}", file=sys.stderr)
        return 2
    command = runner_command(args, resources, options.user_script)
    env = launch_environment(args, resources, dict(os.environ))
    print(f"deepy.py: {describe(resources)} data_parallel_size={args.derived.data_parallel_size} "
          f"train_batch_size={args.training.train_batch_size}", flush=True)
    env_note = "DS_ACCELERATOR=cpu " if resources.use_cpu else ""
    if options.dry_run:
        print(f"deepy.py: launcher command: {env_note}{shlex.join(command)}")
        return 0
    os.execve(command[0], command, env)
    return 0  # not reached


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py", description="Train a neox-metala model; started by "
                                     "deepy.py (which passes the resolved config) or with -d DIR a.yml ...")
    parser.add_argument(CONFIG_ARGUMENT, "--neox_config_b64", dest="config_b64", default=None,
                        help="the config resolved by deepy.py (base64 of its JSON)")
    parser.add_argument("conf_files", nargs="*", help="YAML files, when not started by deepy.py")
    parser.add_argument("-d", "--conf_dir", "--conf-dir", default=None, help="directory the YAML files are in")
    # Appended by DeepSpeed's launcher; the rank comes from the environment (LOCAL_RANK) instead.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def parse_train_args(argv: list[str] | None = None, environ: MutableMapping[str, str] | None = None) -> NeoXArgs:
    """The resolved config on every rank: from deepy.py's --neox-config-b64, or from YAML files directly (then
    resolved for WORLD_SIZE, 1 when unset). Under Slurm (deepspeed_slurm / launcher: slurm) it first sets
    RANK / LOCAL_RANK / WORLD_SIZE from srun's variables. A config mistake exits with a one-line message."""
    environ = os.environ if environ is None else environ
    parser = _train_parser()
    options = parser.parse_intermixed_args(argv)
    if (options.config_b64 is None) == (not options.conf_files):
        parser.error(f"give either {CONFIG_ARGUMENT} (as deepy.py does) or config files (-d DIR a.yml b.yml)")
    try:
        if options.config_b64 is not None:
            args = NeoXArgs.from_dict(decode_config(options.config_b64))
            apply_slurm_environment(args, environ)
            args.check_world_size(int(environ.get("WORLD_SIZE", "1")))
        else:
            args = load_config(options.conf_files, options.conf_dir)
            apply_slurm_environment(args, environ)
            args.resolve(int(environ.get("WORLD_SIZE", "1")))
    except ConfigError as error:
        raise SystemExit(f"train.py: error: {error}") from None
    return args


def slurm_rank_environment(environ: Mapping[str, str], master_port: int) -> dict[str, str]:
    """torch.distributed's variables from srun's, for ranks srun started directly (DeepSpeed's slurm
    backend); {} when not under srun or when a launcher already set RANK."""
    if "RANK" in environ or "SLURM_PROCID" not in environ:
        return {}
    updates = {"RANK": environ["SLURM_PROCID"], "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
               "WORLD_SIZE": environ.get("WORLD_SIZE", environ.get("SLURM_NTASKS", "1"))}
    if "MASTER_ADDR" not in environ and "SLURM_JOB_NODELIST" in environ:
        updates["MASTER_ADDR"] = _first_slurm_host(environ["SLURM_JOB_NODELIST"])
    if "MASTER_PORT" not in environ:
        updates["MASTER_PORT"] = str(master_port)
    return updates


def apply_slurm_environment(args: NeoXArgs, environ: MutableMapping[str, str]) -> None:
    if args.launcher.deepspeed_slurm or args.launcher.launcher == "slurm":
        environ.update(slurm_rank_environment(environ, args.launcher.master_port))


def _first_slurm_host(nodelist: str) -> str:
    hostnames = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True,
                               text=True).stdout.split()
    return hostnames[0]
