"""Block norms: `rmsnorm` (learned scale), `layernorm` (weight and bias), `simple_rmsnorm` (no parameters,
the official HF model's default). RMS norms compute in fp32 and return the input dtype."""

from __future__ import annotations

import torch
from torch import nn

SIMPLE_RMSNORM_EPS = 1e-6  # fixed in the official HF model, whatever the config says


def _rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    wide = x.float()
    return wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    """x (..., hidden) -> x / rms(x) * scale, same shape and dtype."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x):
        return (_rms_normalize(x, self.eps) * self.scale.float()).to(x.dtype)


class SimpleRMSNorm(nn.Module):
    """x (..., hidden) -> x / rms(x), same shape and dtype; no parameters."""

    def __init__(self, hidden_size: int, eps: float = SIMPLE_RMSNORM_EPS):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return _rms_normalize(x, self.eps).to(x.dtype)


NORMS = {
    "rmsnorm": RMSNorm,
    "layernorm": lambda hidden_size, eps: nn.LayerNorm(hidden_size, eps=eps),
    "simple_rmsnorm": lambda hidden_size, eps: SimpleRMSNorm(hidden_size),
}


def build_norm(name: str, hidden_size: int, eps: float) -> nn.Module:
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[name](hidden_size, eps)
