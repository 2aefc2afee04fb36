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

    finetune: bool = False
    """Load only the weights of `load`'s checkpoint and start a new run from them: iteration 0, the data from its
    start, a fresh optimizer, the LR schedule from its warmup, random streams from `seed`, a new W&B run (as in
    GPT-NeoX, for continuing from a released or imported checkpoint). NeoX default False."""

    no_load_optim: bool = False
    """Continue from `load`'s checkpoint (iteration, data position, random streams) with a fresh optimizer (AdamW
    moments and step count zero) and the LR schedule restarted from its warmup, as GPT-NeoX does. NeoX default
    False."""

    no_load_rng: bool = False
    """Do not restore the random streams (dropout) of `load`'s checkpoint: they continue from `seed`. NeoX
    default False."""

    keep_last_n_checkpoints: int | None = None
    """Delete older checkpoints, keeping this many; None keeps all. NeoX default None."""

    def check_values(self, source_of: SourceOf) -> None:
        for key in ("checkpoint_factor", "keep_last_n_checkpoints"):
            value = getattr(self, key)
            require(value is None or value > 0, f"{key} must be > 0, got {value}", key, source_of)
