"""Launcher keys: how deepy.py starts the DeepSpeed runner (NeoX's NeoXArgsDeepspeedRunner subset).

These are read by deepy.py only (neox_metala.launch); train.py gets the resolved world size instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError
from .fields import Section, SourceOf, require

# The multi-node backends of DeepSpeed 0.19.8's runner (deepspeed/launcher/constants.py). NeoX's fork also has
# jsrun; PyPI's DeepSpeed does not.
Launcher = Literal["pdsh", "openmpi", "mvapich", "slurm", "mpich", "impi"]
MPI_LAUNCHERS = ("openmpi", "mvapich", "mpich", "impi")


@dataclass
class LauncherConfig(Section):
    launcher: Launcher = "pdsh"
    """Multi-node backend of the DeepSpeed runner (single-node runs are local whatever this says).
    NeoX default "pdsh"."""

    deepspeed_slurm: bool = False
    """Run under Slurm: the runner starts ranks with srun, and each rank takes RANK / LOCAL_RANK / WORLD_SIZE
    from SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS. Implies launcher: slurm. NeoX default False."""

    hostfile: str | None = None
    """MPI-style hostfile, one "hostname slots=N" line per node. Default (as DeepSpeed): /job/hostfile if it
    exists, else this machine alone. NeoX default None."""

    include: str | None = None
    """Hosts/GPUs to use, DeepSpeed's NAME[:SLOT[,SLOT...]][@NAME...] form, e.g. "node1@node2:0,1".
    Exclusive with exclude, num_nodes and num_gpus. NeoX default None."""

    exclude: str | None = None
    """Hosts/GPUs not to use, same form as include. NeoX default None."""

    num_gpus: int | None = None
    """GPUs (processes) per node; on a machine without GPUs, the number of CPU processes. Default: all
    GPUs of each node (1 process on CPU). NeoX default None."""

    num_nodes: int = -1
    """Use the first N hosts of the hostfile; -1 = all. NeoX default -1."""

    master_port: int = 29500
    """TCP port of the torch.distributed rendezvous on the first node. NeoX default 29500."""

    master_addr: str | None = None
    """Address of the first node; default: DeepSpeed asks it over ssh (the first hostfile host under Slurm).
    NeoX default None."""

    comment: str | None = None
    """Passed to srun as --comment (launcher slurm), as some clusters require. NeoX default None."""

    def check_values(self, source_of: SourceOf) -> None:
        require(
            not (self.include and self.exclude), "include and exclude cannot both be set; use one", "exclude", source_of
        )
        if self.include or self.exclude:
            filter_key = "include" if self.include else "exclude"
            for key, unset in (("num_nodes", self.num_nodes == -1), ("num_gpus", self.num_gpus is None)):
                require(
                    unset,
                    f"{key} cannot be combined with {filter_key} (from {source_of(filter_key)}); "
                    f"name the hosts and slots in {filter_key} instead",
                    key,
                    source_of,
                )
        require(
            self.num_gpus is None or self.num_gpus >= 1,
            f"num_gpus must be >= 1, got {self.num_gpus}",
            "num_gpus",
            source_of,
        )
        require(
            self.num_nodes == -1 or self.num_nodes >= 1,
            f"num_nodes must be -1 (all) or >= 1, got {self.num_nodes}",
            "num_nodes",
            source_of,
        )
        require(
            0 < self.master_port < 65536,
            f"master_port must be in 1..65535, got {self.master_port}",
            "master_port",
            source_of,
        )

    def derive(self, source_of: SourceOf) -> None:
        if self.deepspeed_slurm and self.launcher != "slurm":
            if source_of("launcher") is not None:
                raise ConfigError(
                    f"deepspeed_slurm is true but launcher is {self.launcher!r} (from "
                    f"{source_of('launcher')}); set launcher: slurm or drop one",
                    source_of("deepspeed_slurm"),
                    "deepspeed_slurm",
                )
            self.launcher = "slurm"
        if self.launcher in MPI_LAUNCHERS:
            # DeepSpeed's MPI backends launch every slot of the hostfile and refuse these filters.
            for key in ("include", "exclude", "num_gpus"):
                require(
                    getattr(self, key) is None,
                    f"{key} is not supported with launcher {self.launcher!r} "
                    f"(DeepSpeed's MPI backends run every hostfile slot); edit the hostfile instead",
                    key,
                    source_of,
                )
            require(
                self.num_nodes == -1,
                f"num_nodes is not supported with launcher {self.launcher!r}; edit the hostfile instead",
                "num_nodes",
                source_of,
            )
