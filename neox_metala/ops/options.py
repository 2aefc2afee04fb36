"""MetaLA's settings and its projection layout: the one definition of each, carried unchanged from the config
(`metala_*` keys, config/metala.py) through the layers to the kernels.

Imports nothing (not even torch), so that the config can use it without loading PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("auto", "fla", "chunked", "reference")
CORE_KERNELS = ("fla", "metala")
CONV_KERNELS = ("shifted", "triton")
EPILOGUE_KERNELS = ("compiled", "triton")


@dataclass(frozen=True)
class MetaLAOptions:
    """How a MetaLA layer is built and computed. Config key = "metala_" + field name; defaults are the config's."""

    backend: str = "auto"
    """One of BACKENDS; ops/metala.py says which kernel "auto" picks."""

    chunk_size: int = 64
    """Chunk length of the chunked kernel (fla's chunk_gla also uses 64-token chunks)."""

    decay_normalizer: float = 16.0
    """τ: log α = logsigmoid(gate logits) / τ, as in the official code (ops/reference.py: LOG_DECAY_NORMALIZER)."""

    conv_kernel_size: int = 4
    """Width of the causal short convolution (when short_conv)."""

    self_augmentation: bool = True
    """Add the self-augmentation term (parameter aug_balance)."""

    short_conv: bool = True
    """Run the causal short convolution before the projections."""

    fused_kernels: bool = False
    """GPU: ops/fused.py instead of separate kernels (config/metala.py says why it is opt-in)."""

    core_kernel: str = "metala"
    """One of CORE_KERNELS: the GPU training core on the fla backend, MetaLA's own kernels
    (ops/metala_core_triton.py) or fla's chunk_gla (config/metala.py has the measurements)."""

    conv_kernel: str = "triton"
    """One of CONV_KERNELS: the short convolution inside a compiled block on the fla backend, MetaLA's own Triton
    kernels (ops/short_conv_op.py) or the shifted sum that torch.compile fuses (config/metala.py has the numbers)."""

    keep_core_states: bool = True
    """MetaLA's own core (core_kernel "metala"): keep the per-chunk states from the forward for the backward
    instead of recomputing them (config/metala.py has the trade)."""

    epilogue_kernel: str = "triton"
    """One of EPILOGUE_KERNELS: the epilogue (self-augmentation, per-head LayerNorm, SiLU gate) in training and
    prefill on the fla backend, MetaLA's own Triton kernels (ops/epilogue_op.py) or PyTorch code that
    torch.compile fuses in a compiled block (config/metala.py has the numbers). Other backends (CPU) always run
    the PyTorch code. With core_kernel "metala" too, core and epilogue run as one op (ops/mixer_op.py) whose
    kernels write the projection's gradient themselves."""

    @property
    def conv_width(self) -> int:
        """The short convolution's kernel width, 0 without one (the parameter count and the HF export use this)."""
        return self.conv_kernel_size if self.short_conv else 0


DEFAULT_CHUNK_SIZE = MetaLAOptions.chunk_size
PROJECTION_PARTS = ("q_proj", "k_gate", "v_proj", "g_proj")
"""The fused input projection's parts, in order: queries, decay logits (the key is 1 - decay), values, gate."""


def projection_widths(value_width: int) -> tuple[int, int, int, int]:
    """Widths of PROJECTION_PARTS for a value width W (hidden size, or one rank's share): [W/2, W/2, W, W].

    Queries and decay logits (and so keys) use half of each head's width (head_k_dim = head_v_dim / 2)."""
    return value_width // 2, value_width // 2, value_width, value_width
