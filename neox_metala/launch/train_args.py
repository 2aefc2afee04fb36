"""train.py's command line: the config resolved by deepy.py (passed on the command line), or YAML files read
directly.

    # every rank started by deepy.py runs: train.py --neox-config-b64 <config> --local_rank=N
    torchrun --nproc_per_node 2 train.py -d configs tiny.yml      # also works: train.py reads YAML itself
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
from collections.abc import Mapping, MutableMapping

from ..config import ConfigError, NeoXArgs, load_config

# The argument through which train.py receives the resolved config (as GPT-NeoX passes its configs): base64
# of the to_dict() JSON, so that no shell or pdsh quoting can alter it.
CONFIG_ARGUMENT = "--neox-config-b64"


def encode_config(args: NeoXArgs) -> str:
    """The resolved config and, for error messages on the ranks, the file each key was set in."""
    payload = {"config": args.to_dict(), "sources": args.sources}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_config(encoded: str) -> NeoXArgs:
    payload = json.loads(base64.urlsafe_b64decode(encoded.encode()).decode())
    return NeoXArgs.from_dict(payload["config"], payload.get("sources"))


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a neox-metala model; started by "
        "deepy.py (which passes the resolved config) or with -d DIR a.yml ...",
    )
    parser.add_argument(
        CONFIG_ARGUMENT,
        "--neox_config_b64",
        dest="config_b64",
        default=None,
        help="the config resolved by deepy.py (base64 of its JSON)",
    )
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
            args = decode_config(options.config_b64)
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
    updates = {
        "RANK": environ["SLURM_PROCID"],
        "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
        "WORLD_SIZE": environ.get("WORLD_SIZE", environ.get("SLURM_NTASKS", "1")),
    }
    if "MASTER_ADDR" not in environ and "SLURM_JOB_NODELIST" in environ:
        updates["MASTER_ADDR"] = _first_slurm_host(environ["SLURM_JOB_NODELIST"])
    if "MASTER_PORT" not in environ:
        updates["MASTER_PORT"] = str(master_port)
    return updates


def apply_slurm_environment(args: NeoXArgs, environ: MutableMapping[str, str]) -> None:
    if args.launcher.deepspeed_slurm or args.launcher.launcher == "slurm":
        environ.update(slurm_rank_environment(environ, args.launcher.master_port))


def _first_slurm_host(nodelist: str) -> str:
    hostnames = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True, text=True
    ).stdout.split()
    return hostnames[0]
