"""Optimizer, learning-rate schedule and ZeRO keys (NeoX's NeoXArgsOptimizer / NeoXArgsLRScheduler subset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError, choices_text, did_you_mean
from .fields import Section, SourceOf, require

OPTIMIZER_TYPES = {"adam": "Adam", "adamw": "AdamW"}
ADAM_PARAMS = ("lr", "betas", "eps", "weight_decay")
NEOX_DEFAULT_WEIGHT_DECAY = 0.1

# ZeRO keys that mean something at stages 0 and 1 (DeepSpeed names); passed through to DeepSpeed unchanged.
ZERO_KEYS = (
    "stage",
    "allgather_partitions",
    "allgather_bucket_size",
    "overlap_comm",
    "reduce_scatter",
    "reduce_bucket_size",
    "contiguous_gradients",
    "round_robin_gradients",
    "load_from_fp32_weights",
    "elastic_checkpoint",
    "ignore_unused_parameters",
    "cpu_offload",
    "offload_optimizer",
    "offload_param",
)
SUPPORTED_ZERO_STAGES = (0, 1)
DEFAULT_ZERO_STAGE = 1


@dataclass
class OptimizerConfig(Section):
    optimizer: dict | None = None
    """Required, NeoX form: {type: Adam | AdamW, params: {lr, betas, eps, weight_decay}}. Type names are
    case-insensitive. betas default [0.9, 0.999] and eps 1e-8 (PyTorch's). NeoX default None."""

    lr_decay_style: Literal["constant", "linear", "cosine"] = "linear"
    """Shape of the decay after warmup, down to min_lr at lr_decay_iters. NeoX default "linear"."""

    lr_decay_iters: int | None = None
    """Iterations over which the learning rate decays. Default (as NeoX): train_iters."""

    warmup: float = 0.01
    """Linear warmup length as a fraction of lr_decay_iters (0.01 = 1%). NeoX default 0.01."""

    min_lr: float = 0.0
    """Floor of the decayed learning rate. NeoX default 0.0."""

    weight_decay: float | None = None
    """Weight decay coefficient. Default: optimizer.params.weight_decay if given, else 0.1 (NeoX default 0.1).
    Giving both with different values is an error."""

    gradient_clipping: float = 1.0
    """Clip the global gradient L2 norm to this; 0 disables clipping. NeoX default 1.0."""

    zero_optimization: dict | None = None
    """DeepSpeed ZeRO settings, e.g. {stage: 1, overlap_comm: true}; only stages 0 and 1 are supported.
    Without this key: stage 1 (NeoX's default is 0): ZeRO-1 costs nothing at data-parallel size 1, and it is
    what reports the gradient norm and skips non-finite steps. A block without `stage` is DeepSpeed's stage 0."""

    def check_values(self, source_of: SourceOf) -> None:
        source = source_of("optimizer")
        if self.optimizer is None:
            raise ConfigError(
                "missing required key 'optimizer'; e.g. optimizer: {type: AdamW, params: "
                "{lr: 3.0e-4, betas: [0.9, 0.95], eps: 1.0e-8}}",
                source,
                "optimizer",
            )
        self.optimizer = _checked_optimizer(self.optimizer, source)
        if self.zero_optimization is not None:
            self.zero_optimization = _checked_zero(self.zero_optimization, source_of("zero_optimization"))
        require(
            self.lr_decay_iters is None or self.lr_decay_iters > 0,
            f"lr_decay_iters must be > 0, got {self.lr_decay_iters}",
            "lr_decay_iters",
            source_of,
        )
        require(
            0.0 <= self.warmup <= 1.0,
            f"warmup is a fraction of lr_decay_iters in [0, 1], got {self.warmup}",
            "warmup",
            source_of,
        )
        require(
            0.0 <= self.min_lr <= self.lr,
            f"min_lr must be in [0, lr = {self.lr}], got {self.min_lr}",
            "min_lr",
            source_of,
        )
        require(
            self.weight_decay is None or self.weight_decay >= 0,
            f"weight_decay must be >= 0, got {self.weight_decay}",
            "weight_decay",
            source_of,
        )
        require(
            self.gradient_clipping >= 0,
            f"gradient_clipping must be >= 0 (0 = off), got {self.gradient_clipping}",
            "gradient_clipping",
            source_of,
        )

    def derive(self, source_of: SourceOf) -> None:
        """Reconcile the two places NeoX lets weight decay be given."""
        in_params = self.optimizer["params"].get("weight_decay")
        if self.weight_decay is None:
            self.weight_decay = NEOX_DEFAULT_WEIGHT_DECAY if in_params is None else in_params
        elif in_params is not None and in_params != self.weight_decay:
            raise ConfigError(
                f"weight_decay is {self.weight_decay} but optimizer.params.weight_decay is {in_params} (from "
                f"{source_of('optimizer')}); give it in one place",
                source_of("weight_decay"),
                "weight_decay",
            )

    @property
    def optimizer_type(self) -> str:
        """ "Adam" or "AdamW"."""
        return self.optimizer["type"]

    @property
    def lr(self) -> float:
        """Peak learning rate (optimizer.params.lr)."""
        return self.optimizer["params"]["lr"]

    @property
    def betas(self) -> tuple[float, float]:
        return tuple(self.optimizer["params"].get("betas", (0.9, 0.999)))

    @property
    def eps(self) -> float:
        return self.optimizer["params"].get("eps", 1.0e-8)

    @property
    def zero_stage(self) -> int:
        if self.zero_optimization is None:
            return DEFAULT_ZERO_STAGE
        return self.zero_optimization.get("stage", 0)  # DeepSpeed's own default inside a block


def _underscored(mapping: dict) -> dict:
    return {str(key).replace("-", "_"): value for key, value in mapping.items()}


def _checked_optimizer(optimizer: dict, source: str | None) -> dict:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"optimizer: {message}", source, "optimizer")

    optimizer = _underscored(optimizer)
    for key in optimizer:
        if key not in ("type", "params"):
            raise fail(f"unknown key {key!r}; it takes 'type' and 'params'{did_you_mean(key, ('type', 'params'))}")
    type_name = str(optimizer.get("type", ""))
    if type_name.lower() not in OPTIMIZER_TYPES:
        raise fail(
            f"type {optimizer.get('type')!r} is not supported; allowed: {choices_text(OPTIMIZER_TYPES.values())}"
        )
    params = _underscored(optimizer.get("params") or {})
    for key in params:
        if key not in ADAM_PARAMS:
            raise fail(
                f"unknown params key {key!r}; allowed: {choices_text(ADAM_PARAMS)}{did_you_mean(key, ADAM_PARAMS)}"
            )
    if "lr" not in params:
        raise fail("params.lr is required, e.g. params: {lr: 3.0e-4}")
    params = {key: _checked_param(key, value, fail) for key, value in params.items()}
    return {"type": OPTIMIZER_TYPES[type_name.lower()], "params": params}


def _checked_param(key: str, value, fail) -> float | list[float]:
    def number(x) -> float:
        try:
            if isinstance(x, bool):
                raise ValueError
            return float(x)  # also '3e-4', which PyYAML leaves a string
        except (TypeError, ValueError):
            raise fail(f"params.{key} must be a number, got {x!r}") from None

    if key == "betas":
        if not (isinstance(value, (list, tuple)) and len(value) == 2):
            raise fail(f"params.betas must be a list of two numbers, got {value!r}")
        betas = [number(b) for b in value]
        if not all(0.0 <= b < 1.0 for b in betas):
            raise fail(f"params.betas must be in [0, 1), got {value!r}")
        return betas
    result = number(value)
    if result < 0 or (key in ("lr", "eps") and result == 0):
        raise fail(f"params.{key} must be {'> 0' if key in ('lr', 'eps') else '>= 0'}, got {value!r}")
    return result


def _checked_zero(zero: dict, source: str | None) -> dict:
    zero = _underscored(zero)
    for key, value in zero.items():
        if key not in ZERO_KEYS:
            raise ConfigError(
                f"zero_optimization: unknown key {key!r}{did_you_mean(key, ZERO_KEYS)}", source, "zero_optimization"
            )
        if "offload" in key and value not in (False, None, {}):
            raise ConfigError(
                f"zero_optimization.{key} is not supported (offload needs ZeRO stage 2 or 3, which "
                f"neox-metala does not support); remove it",
                source,
                "zero_optimization",
            )
    stage = zero.get("stage", 0)
    if stage not in SUPPORTED_ZERO_STAGES or isinstance(stage, bool):
        raise ConfigError(
            f"zero_optimization.stage {stage!r} is not supported; allowed: {choices_text(SUPPORTED_ZERO_STAGES)}",
            source,
            "zero_optimization",
        )
    return zero
