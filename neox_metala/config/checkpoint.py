"""Checkpoint keys (NeoX names)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import Section, SourceOf, require


@dataclass
class CheckpointConfig(Section):
    save: str | None = None
    """Directory to write checkpoints to (and the resolved config beside them). NeoX default None."""

    load: str | None = None
    """Directory to resume from; its latest checkpoint is loaded when one exists. NeoX default None."""

    checkpoint_factor: int | None = None
    """Save every this many iterations (NeoX's linear checkpoint_scale); the last iteration is always saved
    when save is set. NeoX default None."""

    keep_last_n_checkpoints: int | None = None
    """Delete older checkpoints, keeping this many; None keeps all. NeoX default None."""

    def check_values(self, source_of: SourceOf) -> None:
        for key in ("checkpoint_factor", "keep_last_n_checkpoints"):
            value = getattr(self, key)
            require(value is None or value > 0, f"{key} must be > 0, got {value}", key, source_of)
