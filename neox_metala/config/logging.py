"""Logging and monitoring keys (NeoX's NeoXArgsLogging subset plus the MFU peak override)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import Section, SourceOf, require


@dataclass
class LoggingConfig(Section):
    log_interval: int = 100
    """Log training metrics every this many iterations. NeoX default 100."""

    use_wandb: bool = False
    """Log to Weights & Biases (WANDB_MODE=offline works without a network). NeoX default None, which turns it
    on when wandb is importable; here it is opt-in."""

    wandb_project: str = "neox"
    """W&B project. NeoX default "neox"."""

    wandb_group: str | None = None
    """W&B group that collects the runs of one experiment. NeoX default None."""

    wandb_team: str | None = None
    """W&B entity (team). NeoX default None."""

    wandb_run_name: str | None = None
    """W&B run name; None lets W&B pick. NeoX default None."""

    wandb_host: str = "https://api.wandb.ai"
    """W&B server. NeoX default "https://api.wandb.ai"."""

    tensorboard_dir: str | None = None
    """Write TensorBoard event files here. NeoX default None."""

    log_dir: str | None = None
    """Directory for text logs. NeoX default None."""

    peak_tflops_per_gpu: float | None = None
    """Peak dense TFLOP/s of one GPU at the training precision, for MFU; None looks it up by device name."""

    def check_values(self, source_of: SourceOf) -> None:
        require(self.log_interval > 0, f"log_interval must be > 0, got {self.log_interval}", "log_interval", source_of)
        require(
            self.peak_tflops_per_gpu is None or self.peak_tflops_per_gpu > 0,
            f"peak_tflops_per_gpu must be > 0, got {self.peak_tflops_per_gpu}",
            "peak_tflops_per_gpu",
            source_of,
        )
