"""The multi-node DeepSpeed runner command that deepy.py execs, and the environment it runs in.

With pdsh (the default backend) the runner is `pdsh_runner.py`: DeepSpeed's, with each node's ranks started and
watched by `node.py` (preemption saves are waited for) instead of DeepSpeed's launch.py (which kills them after
30 s). Slurm (srun starts every rank itself) and the MPI backends run DeepSpeed's runner unchanged.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys

from ..config import NeoXArgs
from .resources import LaunchResources
from .train_args import CONFIG_ARGUMENT, encode_config

logger = logging.getLogger("neox_metala.launch")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER_MODULES = {"pdsh": "neox_metala.launch.pdsh_runner"}  # launcher -> runner module; others: DeepSpeed's


def runner_command(args: NeoXArgs, resources: LaunchResources, user_script: str) -> list[str]:
    """`python -m deepspeed.launcher.runner ... train.py --neox-config-b64 ...` for these resources."""
    launcher = args.launcher
    command = [sys.executable, "-u", "-m", RUNNER_MODULES.get(launcher.launcher, "deepspeed.launcher.runner")]
    if resources.hostfile is not None:
        command += ["--hostfile", resources.hostfile]
    if launcher.include:
        command += ["--include", launcher.include]
    if launcher.exclude:
        command += ["--exclude", launcher.exclude]
    if launcher.num_nodes != -1:
        command += ["--num_nodes", str(launcher.num_nodes)]
    if launcher.num_gpus is not None or (resources.use_cpu and not (launcher.include or launcher.exclude)):
        # On CPU the runner's own device count is the NUMA node count: say how many processes to start.
        command += ["--num_gpus", str(resources.gpus_per_node[0])]
    command += ["--master_port", str(launcher.master_port)]
    master_addr = _master_addr(args, resources)
    if master_addr:
        command += ["--master_addr", master_addr]
    if resources.hostfile is not None:
        command += ["--launcher", launcher.launcher]
    if launcher.launcher == "slurm":
        # srun places the ranks; compute nodes often refuse ssh, which the runner would otherwise try.
        command += ["--no_ssh_check"]
        if launcher.comment:
            command += ["--launcher_args", f"--comment={shlex.quote(launcher.comment)}"]
    elif launcher.comment:
        logger.warning("comment is passed on only with launcher: slurm (to srun); ignoring it")
    return command + [user_script, CONFIG_ARGUMENT, encode_config(args)]


def _master_addr(args: NeoXArgs, resources: LaunchResources) -> str | None:
    if args.launcher.master_addr:
        return args.launcher.master_addr
    if args.launcher.launcher == "slurm" and resources.hostfile is not None:
        # The runner would ask the first host over ssh (hostname -I); under Slurm its name is enough.
        return next(iter(resources.hosts))
    return None


def launch_environment(args: NeoXArgs, resources: LaunchResources, environ: dict[str, str]) -> dict[str, str]:
    """The runner's environment: CPU accelerator without GPUs; rendezvous address for srun-started ranks; this
    repository importable (the runner module, and node.py on every host, where the runner exports PYTHONPATH)."""
    env = dict(environ)
    if args.launcher.launcher in RUNNER_MODULES:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPOSITORY, environ.get("PYTHONPATH")]))
    if resources.use_cpu:
        env["DS_ACCELERATOR"] = "cpu"
    if args.launcher.launcher == "slurm":
        # srun --export=ALL hands this environment to every rank, which reads MASTER_ADDR / MASTER_PORT.
        master_addr = _master_addr(args, resources)
        if master_addr:
            env["MASTER_ADDR"] = master_addr
        env["MASTER_PORT"] = str(args.launcher.master_port)
    return env


def describe(resources: LaunchResources) -> str:
    """One line for humans: world size, nodes and GPUs (or CPU processes) per node."""
    per_node = sorted(set(resources.gpus_per_node))
    unit = "CPU processes" if resources.use_cpu else "GPUs"
    per_node_text = str(per_node[0]) if len(per_node) == 1 else "/".join(map(str, resources.gpus_per_node))
    return (
        f"world_size={resources.world_size} nodes={resources.num_nodes} {unit.replace(' ', '_').lower()}"
        f"_per_node={per_node_text} hosts={','.join(resources.hosts)}"
    )
