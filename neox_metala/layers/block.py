"""The pre-norm residual block and its pipeline form (spec §3.1):

h   = x + Dropout(Mixer(Norm(x)))       Mixer: MetaLA, or the attention baseline, by layer type
out = h + SwiGLU(Norm(h))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import ParallelSelfAttention
from .cache import LayerCache
from .mixer import MetaLAMixer, padding_mask_or_none
from .mlp import ParallelSwiGLU
from .norms import build_norm
from .settings import BlockSettings

MIXER_TYPES = {"metala": MetaLAMixer, "attention": ParallelSelfAttention}


class ParallelBlock(nn.Module):
    """Pre-norm residual block, mixer by layer type: hidden (seq, batch, hidden) -> (seq, batch, hidden)."""

    def __init__(self, settings: BlockSettings, layer_number: int, layer_type: str = "metala"):
        super().__init__()
        if layer_type not in MIXER_TYPES:
            raise ValueError(
                f"unknown layer type {layer_type!r} in attention_config; choose one of {', '.join(MIXER_TYPES)}"
            )
        self.checkpoint_activations = settings.checkpoint_activations
        self.input_norm = build_norm(settings.norm, settings.hidden_size, settings.norm_eps)
        self.mixer = MIXER_TYPES[layer_type](settings, layer_number)
        self.dropout = nn.Dropout(settings.hidden_dropout)
        self.post_mixer_norm = build_norm(settings.norm, settings.hidden_size, settings.norm_eps)
        self.mlp = ParallelSwiGLU(settings, layer_number)
        self._compiled_forward = None

    def compile(self, mode: str = "default") -> None:
        """Regional compilation (torch.compile of this block's forward, one graph per direction, the MetaLA core
        inside it as a custom op): norms, residual adds, RoPE, the SwiGLU activation and the mixer's elementwise
        steps become a few fused Triton kernels instead of dozens of eager ones, GEMMs stay cuBLAS and the core
        stays fla's kernels. Every block reuses the same compiled code (modules are inlined; their parameters are
        graph inputs). `mode`: torch.compile's (config key torch_compile_mode)."""
        # A block that fails to compile (a new torch or fla version) runs eagerly, slower, with dynamo's warning,
        # instead of stopping a run for a speed feature.
        torch._dynamo.config.suppress_errors = True
        self._compiled_forward = torch.compile(self._forward, dynamic=False, mode=mode)

    def _forward(self, hidden, padding_mask, document_starts=None, cache=None):
        mixed = self.mixer(self.input_norm(hidden), padding_mask, cache=cache, document_starts=document_starts)
        hidden = hidden + self.dropout(mixed)
        return self.mlp(self.post_mixer_norm(hidden), residual=hidden)

    def forward(self, hidden, padding_mask=None, cache: LayerCache | None = None, document_starts=None):
        """hidden: (seq, batch, hidden) -> same shape. `cache`: decode state, continued and updated.
        document_starts: (batch, seq) bool, where packed documents begin (`reset_attention_mask`), or None."""
        if cache is not None:  # decoding: changing lengths and a mutable cache; eager
            return self._forward(hidden, padding_mask, document_starts, cache)
        run = self._compiled_forward or self._forward
        if self.checkpoint_activations and self.training:
            # Recompute the block in backward; RNG state is replayed so dropout masks agree.
            return checkpoint(run, hidden, padding_mask, document_starts, use_reentrant=False)
        return run(hidden, padding_mask, document_starts)


class ParallelBlockPipe(ParallelBlock):
    """Pipeline stage form: (hidden [seq, batch, hidden], mask[, document_starts]) -> the same tuple with the new
    hidden, as GPT-NeoX's *Pipe layers; document_starts travels only when documents are kept apart."""

    def forward(self, args, cache: LayerCache | None = None):
        hidden, mask, *document_starts = args
        starts = document_starts[0] if document_starts else None
        return super().forward(hidden, padding_mask_or_none(mask), cache, starts), mask, *document_starts
