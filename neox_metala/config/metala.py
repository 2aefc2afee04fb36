"""MetaLA layer keys (ours, prefixed metala_; no NeoX equivalent). Each is a field of ops.MetaLAOptions, which
holds the defaults; `MetaLAConfig.options()` is what the layers and kernels receive."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ..ops.options import BACKENDS, CONV_KERNELS, CORE_KERNELS, EPILOGUE_KERNELS, MetaLAOptions
from .fields import Section, SourceOf, require

PREFIX = "metala_"
_DEFAULTS = MetaLAOptions()


@dataclass
class MetaLAConfig(Section):
    metala_backend: Literal[BACKENDS] = _DEFAULTS.backend
    """Kernel for the MetaLA recurrence: "fla" (Triton, GPU), "chunked" (pure PyTorch, chunk-parallel),
    "reference" (step-by-step recurrence, for tests), "auto" (fla when importable on GPU, else chunked)."""

    metala_chunk_size: int = _DEFAULTS.chunk_size
    """Chunk length of the chunked kernel. Default 64."""

    metala_decay_normalizer: float = _DEFAULTS.decay_normalizer
    """The log-decay is logsigmoid(gate logits) / metala_decay_normalizer, as in the official MetaLA code.
    Default 16.0."""

    metala_conv_kernel_size: int = _DEFAULTS.conv_kernel_size
    """Width of the causal short convolution before the projections. Default 4."""

    metala_self_augmentation: bool = _DEFAULTS.self_augmentation
    """Add MetaLA's self-augmentation term (the current token's own query-key contribution). Default True."""

    metala_short_conv: bool = _DEFAULTS.short_conv
    """Use the causal short convolution. Default True."""

    metala_fused_kernels: bool = _DEFAULTS.fused_kernels
    """GPU only: run MetaLA between its projections as one autograd Function with torch.compile-fused
    elementwise steps (ops/fused.py; 1.6x faster than the default path on an H100 at T=2048, docs/benchmarks.md).
    Off by default until tests/ops/test_fused_gpu.py has measured both paths on the same inputs on a GPU: the
    1.8e-2 / 3.4e-2 gradient errors once blamed on it were measured by a test that ran the default path, and fit
    inputs where no core with bf16 key and output does better (a nearly singular per-head LayerNorm,
    tests/ops/mix_references.py)."""

    metala_core_kernel: Literal[CORE_KERNELS] = _DEFAULTS.core_kernel
    """GPU training core (the fla backend, default path): "metala" (MetaLA's own Triton kernels, default: the key
    1 - decay formed inside them, seven launches per forward + backward (kept states) against fla's eleven;
    ops/metala_core_kernels.py) or "fla" (fla's chunk_gla). On an H200 (docs/benchmarks.md, 2026-11-29) the own
    kernels took the 380M model from 0.830x to 0.904x the plain Transformer's tokens/s at T=2048 and from 0.997x to
    1.123x at T=8192, and with their two-level scans and tuned configurations (session 8) to 0.954x and 1.281x
    (core alone 0.51 ms per layer and micro batch with kept states, fla's 1.00), within
    bf16 rounding of the fp64 recurrence (tests/ops/test_metala_core_triton.py on the GPU). Packed documents
    (reset_attention_mask) keep fla's varlen kernels; the fused path (metala_fused_kernels) runs fla's core."""

    metala_conv_kernel: Literal[CONV_KERNELS] = _DEFAULTS.conv_kernel
    """Short convolution (+ SiLU) in a compiled block on the fla backend (GPU training): "triton" (MetaLA's own
    Triton kernels as custom ops: one forward, two backward kernels; ops/short_conv_op.py; default) or "shifted" (a
    sum of shifted copies that torch.compile turns into four kernels per layer and micro batch). On an H200
    (docs/benchmarks.md, 2026-11-29, session 8) the kernels took the 380M model from 145.7k to 147.6k tokens/s at
    T=2048 and from 145.3k to 149.5k at T=8192. Packed documents (reset_attention_mask) keep the shifted form."""

    metala_keep_core_states: bool = _DEFAULTS.keep_core_states
    """MetaLA's own core (metala_core_kernel: metala): save the state entering each 64-token chunk in the forward for
    the backward (default) instead of recomputing it there. Costs B·T/64·H·K·V elements of activation memory per
    layer (~33 MB in bf16 per layer and micro batch of 16,384 tokens at hidden 1024: 17.2 -> 18.0 GiB for the 380M
    model at T=2048), saves two of the backward's kernels (core f+b 0.741 -> 0.643 ms on an H200 before the tuned
    configurations); set false when activation memory is short."""

    metala_epilogue_kernel: Literal[EPILOGUE_KERNELS] = _DEFAULTS.epilogue_kernel
    """The epilogue after the recurrence (self-augmentation, per-head LayerNorm, SiLU gate, and the key it recomputes
    from the decay logits) in training and prefill on the fla backend (GPU): "triton" (MetaLA's own Triton kernels
    as custom ops: one forward kernel, one backward kernel and two small sums; ops/epilogue_op.py; default) or
    "compiled" (PyTorch code that torch.compile fuses into ~6-7 kernels per layer and micro batch forward and
    backward, ~2.5x their byte floor on an H200). On an H200 (docs/benchmarks.md, 2026-11-29, session 12) the 380M
    model at T=2048 ran 167.9k tokens/s with these kernels, CUDA graphs and direct launches (1.042x the plain
    compiled Transformer++ in the same run), against 164.1k with CUDA graphs alone. Tested against the fp64
    reference on the GPU and in Triton's interpreter. The fused path (metala_fused_kernels) keeps its own epilogue."""

    def check_values(self, source_of: SourceOf) -> None:
        require(
            self.metala_chunk_size > 0,
            f"metala_chunk_size must be > 0, got {self.metala_chunk_size}",
            "metala_chunk_size",
            source_of,
        )
        require(
            self.metala_decay_normalizer > 0,
            f"metala_decay_normalizer must be > 0, got {self.metala_decay_normalizer}",
            "metala_decay_normalizer",
            source_of,
        )
        require(
            self.metala_conv_kernel_size >= 1,
            f"metala_conv_kernel_size must be >= 1, got {self.metala_conv_kernel_size}",
            "metala_conv_kernel_size",
            source_of,
        )
        # only a core or epilogue asked for in a config is refused: the default one is simply not the fused path's
        require(
            not (self.metala_fused_kernels and self.metala_core_kernel != "fla" and source_of("metala_core_kernel")),
            f"metala_core_kernel {self.metala_core_kernel!r} has no effect with metala_fused_kernels: true (the "
            f"fused path runs fla's core); set one of them",
            "metala_core_kernel",
            source_of,
        )
        require(
            not (
                self.metala_fused_kernels
                and self.metala_epilogue_kernel != "compiled"
                and source_of("metala_epilogue_kernel")
            ),
            f"metala_epilogue_kernel {self.metala_epilogue_kernel!r} has no effect with metala_fused_kernels: true "
            f"(the fused path has its own epilogue); set one of them",
            "metala_epilogue_kernel",
            source_of,
        )

    def options(self) -> MetaLAOptions:
        """These keys as the layers and kernels take them."""
        return MetaLAOptions(**{name: getattr(self, PREFIX + name) for name in _OPTION_NAMES})


_OPTION_NAMES = [f.name for f in dataclasses.fields(MetaLAOptions)]
assert [PREFIX + name for name in _OPTION_NAMES] == MetaLAConfig.field_names(), (
    "config/metala.py must declare one metala_<name> key per ops.MetaLAOptions field, in the same order"
)
