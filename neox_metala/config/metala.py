"""MetaLA layer keys (ours, prefixed metala_; no NeoX equivalent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .fields import Section, SourceOf, require


@dataclass
class MetaLAConfig(Section):
    metala_backend: Literal["auto", "fla", "chunked", "reference"] = "auto"
    """Kernel for the MetaLA recurrence: "fla" (Triton, GPU), "chunked" (pure PyTorch, chunk-parallel),
    "reference" (step-by-step recurrence, for tests), "auto" (fla when importable on GPU, else chunked)."""

    metala_chunk_size: int = 64
    """Chunk length of the chunked kernel. Default 64."""

    metala_decay_normalizer: float = 16.0
    """The log-decay is logsigmoid(gate logits) / metala_decay_normalizer, as in the official MetaLA code.
    Default 16.0."""

    metala_conv_kernel_size: int = 4
    """Width of the causal short convolution before the projections. Default 4."""

    metala_self_augmentation: bool = True
    """Add MetaLA's self-augmentation term (the current token's own query-key contribution). Default True."""

    metala_short_conv: bool = True
    """Use the causal short convolution. Default True."""

    metala_fused_kernels: bool = False
    """GPU only: run MetaLA between its projections as one autograd Function with torch.compile-fused
    elementwise steps (ops/fused.py; 1.6x faster than the default path on an H100 at T=2048, docs/benchmarks.md).
    Off by default: its self-augmentation gradients measured 1.8e-2 / 3.4e-2 relative error against fp64 on
    the GPU, against <= 5e-3 for the default path (tests/ops/test_fused_gpu.py; under investigation)."""

    def check_values(self, source_of: SourceOf) -> None:
        require(self.metala_chunk_size > 0, f"metala_chunk_size must be > 0, got {self.metala_chunk_size}",
                "metala_chunk_size", source_of)
        require(self.metala_decay_normalizer > 0,
                f"metala_decay_normalizer must be > 0, got {self.metala_decay_normalizer}",
                "metala_decay_normalizer", source_of)
        require(self.metala_conv_kernel_size >= 1,
                f"metala_conv_kernel_size must be >= 1, got {self.metala_conv_kernel_size}",
                "metala_conv_kernel_size", source_of)
