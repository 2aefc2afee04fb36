"""Which hosts and GPU slots a launch uses, worked out the way DeepSpeed's runner (0.19.8) works them out.

deepy.py needs the world size before it starts the runner, to resolve batch sizes and parallel sizes. These
functions follow deepspeed/launcher/runner.py (hostfile "NAME slots=N" lines; include/exclude
"NAME[:SLOT,...]@..."; then num_nodes / num_gpus) and are tested against it, but fail on mistakes DeepSpeed
lets through (a missing hostfile silently becomes a single-node run there), naming the config key.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..config.errors import ConfigError
from ..config.fields import SourceOf
from ..config.launcher import LauncherConfig

LOCALHOST = "localhost"
DEFAULT_HOSTFILE = "/job/hostfile"  # what DeepSpeed's runner reads when no hostfile is given
_HOSTFILE_LINE = re.compile(r"^(\S+)\s+slots=(\d+)")


@dataclass
class LaunchResources:
    hosts: dict[str, list[int]]
    """Host -> the GPU slots (CUDA device ids) used there, in rank order."""

    hostfile: str | None
    """The hostfile the runner must be given; None for a single-machine run without one."""

    use_cpu: bool
    """No GPU: run CPU processes with gloo (DS_ACCELERATOR=cpu)."""

    @property
    def num_nodes(self) -> int:
        return len(self.hosts)

    @property
    def world_size(self) -> int:
        return sum(len(slots) for slots in self.hosts.values())

    @property
    def gpus_per_node(self) -> list[int]:
        return [len(slots) for slots in self.hosts.values()]


def parse_hostfile(path: str, source: str | None) -> OrderedDict[str, int]:
    """Host -> slot count of an MPI-style hostfile; comments and blank lines are skipped."""
    if not os.path.isfile(path):
        raise ConfigError(f"hostfile: {path!r} does not exist", source, "hostfile")
    pool: OrderedDict[str, int] = OrderedDict()
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = _HOSTFILE_LINE.match(line)
            if not match:
                raise ConfigError(
                    f"hostfile {path}, line {number}: expected 'hostname slots=N', got {line!r}", source, "hostfile"
                )
            host, slots = match.group(1), int(match.group(2))
            if host in pool:
                raise ConfigError(f"hostfile {path}, line {number}: host {host!r} is listed twice", source, "hostfile")
            pool[host] = slots
    if not pool:
        raise ConfigError(f"hostfile {path} lists no hosts", source, "hostfile")
    return pool


def _parse_node_specs(spec: str, key: str, source: str | None) -> dict[str, list[int]]:
    nodes: dict[str, list[int]] = {}
    for node_spec in spec.split("@"):
        host, _, slots = node_spec.partition(":")
        try:
            slot_ids = [int(slot) for slot in slots.split(",")] if slots else []
        except ValueError:
            raise ConfigError(
                f"{key}: bad slot list in {node_spec!r}; the form is NAME[:SLOT[,SLOT...]][@NAME...]", source, key
            ) from None
        nodes[host] = sorted(set(nodes.get(host, []) + slot_ids))
    return nodes


def filter_hosts(
    pool: dict[str, int], include: str | None, exclude: str | None, source_of: SourceOf
) -> dict[str, list[int]]:
    """Apply DeepSpeed's include / exclude strings to a host -> slot-count pool."""
    available = {host: list(range(count)) for host, count in pool.items()}
    key, spec = ("include", include) if include else ("exclude", exclude)
    if not spec:
        return available
    source = source_of(key)
    chosen: dict[str, list[int]] = {} if include else {h: list(s) for h, s in available.items()}
    for host, slots in _parse_node_specs(spec, key, source).items():
        if host not in available:
            raise ConfigError(f"{key}: host {host!r} is not in the hostfile ({', '.join(available)})", source, key)
        unknown = [slot for slot in slots if slot not in available[host]]
        if unknown:
            raise ConfigError(
                f"{key}: host {host!r} has no slot {unknown[0]} (it has {len(available[host])})", source, key
            )
        if include:
            chosen[host] = slots or available[host]
        else:
            chosen[host] = [slot for slot in chosen[host] if slots and slot not in slots]
    return OrderedDict((host, chosen[host]) for host in available if chosen.get(host))


def limit_hosts(
    hosts: dict[str, list[int]], num_nodes: int, num_gpus: int | None, check_slots: bool, source_of: SourceOf
) -> dict[str, list[int]]:
    """num_nodes keeps the first N hosts; num_gpus uses slots 0..num_gpus-1 on each, as DeepSpeed does."""
    if num_nodes != -1:
        if num_nodes > len(hosts):
            raise ConfigError(
                f"num_nodes is {num_nodes} but only {len(hosts)} host(s) are available ({', '.join(hosts)})",
                source_of("num_nodes"),
                "num_nodes",
            )
        hosts = OrderedDict(list(hosts.items())[:num_nodes])
    if num_gpus is not None:
        for host, slots in hosts.items():
            if check_slots and num_gpus > len(slots):
                raise ConfigError(
                    f"num_gpus is {num_gpus} but host {host!r} has {len(slots)} GPU(s)",
                    source_of("num_gpus"),
                    "num_gpus",
                )
        hosts = OrderedDict((host, list(range(num_gpus))) for host in hosts)
    return hosts


def plan_resources(
    launcher: LauncherConfig, source_of: SourceOf, local_gpu_count: Callable[[], int] | None = None
) -> LaunchResources:
    """The hosts and slots a launch with these settings uses. `local_gpu_count` is only called for a
    single-machine run without a hostfile (it imports torch); tests pass a stub."""
    hostfile = launcher.hostfile
    if hostfile is None and os.path.isfile(DEFAULT_HOSTFILE):
        hostfile = DEFAULT_HOSTFILE  # DeepSpeed's runner would read it anyway
    if hostfile is not None:
        pool = parse_hostfile(hostfile, source_of("hostfile"))
        hosts = filter_hosts(pool, launcher.include, launcher.exclude, source_of)
        hosts = limit_hosts(hosts, launcher.num_nodes, launcher.num_gpus, True, source_of)
        return LaunchResources(dict(hosts), hostfile, use_cpu=False)
    if launcher.num_nodes not in (-1, 1):
        raise ConfigError(
            f"num_nodes is {launcher.num_nodes} but no hostfile is set; add hostfile: with one "
            f"'hostname slots=N' line per node",
            source_of("num_nodes"),
            "num_nodes",
        )
    gpus = (local_gpu_count or visible_gpu_count)()
    use_cpu = gpus == 0
    # On CPU, DeepSpeed's runner starts num_gpus processes whatever the core count; default to one.
    pool = {LOCALHOST: 1 if use_cpu else gpus}
    hosts = filter_hosts(pool, launcher.include, launcher.exclude, source_of)
    hosts = limit_hosts(hosts, -1, launcher.num_gpus, not use_cpu, source_of)
    return LaunchResources(dict(hosts), None, use_cpu=use_cpu)


def visible_gpu_count() -> int:
    """CUDA devices this process can see (0 when DS_ACCELERATOR=cpu forces a CPU run)."""
    if os.environ.get("DS_ACCELERATOR", "").lower() == "cpu":
        return 0
    import torch  # deferred: a second of import that --dry-run with a hostfile does not need

    return torch.cuda.device_count()
