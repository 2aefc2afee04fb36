"""Learning-rate schedule: linear warmup, then cosine / linear / constant decay to `min_lr` (GPT-NeoX semantics:
`warmup` is a fraction of `lr_decay_iters`). Its state is the iteration; DeepSpeed saves it in checkpoints."""

from __future__ import annotations

import math


class WarmupDecaySchedule:
    def __init__(
        self, optimizer, max_lr: float, min_lr: float, warmup_iters: int, decay_iters: int, decay_style: str = "cosine"
    ):
        if decay_style not in ("cosine", "linear", "constant"):
            raise ValueError(f"unknown lr_decay_style {decay_style!r}; choose cosine, linear or constant")
        self.optimizer = optimizer
        self.max_lr, self.min_lr = max_lr, min_lr
        self.warmup_iters, self.decay_iters = warmup_iters, max(decay_iters, 1)
        self.decay_style = decay_style
        self.iteration = 0
        self._apply(self.lr_at(0))

    def lr_at(self, iteration: int) -> float:
        if self.warmup_iters and iteration <= self.warmup_iters:
            return self.max_lr * iteration / self.warmup_iters
        if self.decay_style == "constant":
            return self.max_lr
        progress = min(1.0, (iteration - self.warmup_iters) / max(1, self.decay_iters - self.warmup_iters))
        if self.decay_style == "linear":
            factor = 1.0 - progress
        else:
            factor = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr + (self.max_lr - self.min_lr) * factor

    def _apply(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, increment: int = 1) -> None:
        """Called by DeepSpeed after each optimizer step (not after skipped ones)."""
        self.iteration += increment
        self._apply(self.lr_at(self.iteration))

    def get_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return self.get_lr()

    def state_dict(self) -> dict:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        self._apply(self.lr_at(self.iteration))
