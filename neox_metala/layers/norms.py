"""Block norms: `rmsnorm` (learned scale), `layernorm` (weight and bias), `simple_rmsnorm` (no parameters,
the official HF model's default). RMS norms compute in fp32 and return the input dtype, through
ops/rms_norm_op.py (Triton kernels on CUDA). `add_and_norm(norm, x, residual)` is the block's residual add and
the norm after it, one op for the RMS norms."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import rms_norm_op

SIMPLE_RMSNORM_EPS = 1e-6  # fixed in the official HF model, whatever the config says


class RMSNorm(nn.Module):
    """x (..., hidden) -> x / rms(x) * scale, same shape and dtype."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x):
        return rms_norm_op.rms_norm(x, self.scale, self.eps)

    def add_and_norm(self, x, residual):
        return rms_norm_op.add_rms_norm(x, residual, self.scale, self.eps)


class SimpleRMSNorm(nn.Module):
    """x (..., hidden) -> x / rms(x), same shape and dtype; no parameters."""

    def __init__(self, hidden_size: int, eps: float = SIMPLE_RMSNORM_EPS):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return rms_norm_op.rms_norm(x, None, self.eps)

    def add_and_norm(self, x, residual):
        return rms_norm_op.add_rms_norm(x, residual, None, self.eps)


def add_and_norm(norm: nn.Module, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (x + residual, norm(x + residual))."""
    if hasattr(norm, "add_and_norm"):
        return norm.add_and_norm(x, residual)
    total = x + residual
    return total, norm(total)


NORMS = {
    "rmsnorm": RMSNorm,
    "layernorm": lambda hidden_size, eps: nn.LayerNorm(hidden_size, eps=eps),
    "simple_rmsnorm": lambda hidden_size, eps: SimpleRMSNorm(hidden_size),
}


def build_norm(name: str, hidden_size: int, eps: float) -> nn.Module:
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[name](hidden_size, eps)
