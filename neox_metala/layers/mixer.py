"""MetaLAMixer: the token mixer of spec §2 with its heads split across tensor-parallel ranks.

    xc = SiLU(causal depthwise conv(x))                      replicated: every projection needs all channels
    [q | decay logits | v | gate] = xc W_in (one GEMM)        column-parallel: this rank's heads only
    y  = token_mix(q, decay logits, v, gate + b_g, aug)       local heads, no communication (neox_metala.ops)
    out = y W_out                                              row-parallel: one all-reduce

Unlike the official GPT-NeoX layer (which gathers every projection and runs all heads on every rank), each
rank runs only heads/TP heads, and the result equals the single-rank mixer.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import ops, parallel
from . import init
from .cache import LayerCache
from .settings import BlockSettings, check_head_split

CONV_INIT_BOUND = 0.5  # PyTorch's Conv1d default for fan_in = kernel 4: U(-1/sqrt(4), 1/sqrt(4))


def padding_mask_or_none(mask):
    """Pipeline stages pass a (batch, seq) bool padding mask, or a one-element placeholder for 'no padding'."""
    return mask if mask is not None and mask.dim() == 2 else None


class MetaLAMixer(nn.Module):
    """MetaLA token mixer, this rank's heads: hidden (seq, batch, hidden) -> (seq, batch, hidden), all-reduced."""

    def __init__(self, settings: BlockSettings, layer_number: int):
        super().__init__()
        hidden, heads = settings.hidden_size, settings.num_attention_heads
        tp = parallel.tensor_parallel_size()
        check_head_split(hidden, heads, tp)
        self.heads_per_rank = heads // tp
        self.head_k_dim = hidden // (2 * heads)  # q / decay / key width per head (spec: D / 2H)
        self.head_v_dim = hidden // heads  # v / gate / output width per head
        value_width = self.heads_per_rank * self.head_v_dim
        self.split_sizes = ops.projection_widths(value_width)  # [q | decay logits | v | gate] of this rank
        key_width = self.split_sizes[0]
        self.options = settings.metala

        config = parallel.linear_config(settings.params_dtype)
        self.in_proj = parallel.ColumnParallelLinear(
            hidden, 3 * hidden, config=config, bias=False, init_method=init.allocate_only, gather_output=False
        )
        self.out_proj = parallel.RowParallelLinear(
            hidden,
            hidden,
            config=config,
            bias=False,
            init_method=init.allocate_only,
            input_is_parallel=True,
            skip_bias_add=False,
        )
        device, dtype = self.in_proj.weight.device, settings.params_dtype
        self.gate_bias = nn.Parameter(torch.empty(value_width, device=device, dtype=dtype))
        self.aug_balance = (
            nn.Parameter(torch.empty(key_width, device=device, dtype=dtype)) if self.options.self_augmentation else None
        )
        self.conv_weight = (
            nn.Parameter(torch.empty(hidden, self.options.conv_kernel_size, device=device, dtype=dtype))
            if self.options.short_conv
            else None
        )
        self._initialize(settings, layer_number)

    def _initialize(self, s: BlockSettings, layer_number: int) -> None:
        std, out_std = init.stds(s)
        hidden = s.hidden_size
        full_shapes = {
            name: (rows, hidden) for name, rows in zip(ops.PROJECTION_PARTS, ops.projection_widths(hidden), strict=True)
        }
        shards = [
            init.local_shard(shape, 0, init.normal(std), s.seed, layer_number, "mixer", name)
            for name, shape in full_shapes.items()
        ]
        init.fill_(self.in_proj.weight, torch.cat(shards))
        init.fill_(
            self.out_proj.weight,
            init.local_shard((hidden, hidden), 1, init.normal(out_std), s.seed, layer_number, "mixer", "out_proj"),
        )
        init.mark_tensor_parallel(self.in_proj.weight, 0, [shape[0] for shape in full_shapes.values()])
        init.mark_tensor_parallel(self.out_proj.weight, 1)
        for param in (self.gate_bias, self.aug_balance):  # aug_balance = 0: the term starts as a no-op
            if param is not None:
                init.fill_(param, torch.zeros(param.shape))
                init.mark_tensor_parallel(param, 0)
        if self.conv_weight is not None:  # replicated: drawn in full, identically on every rank
            init.fill_(
                self.conv_weight,
                init.local_shard(
                    self.conv_weight.shape, None, init.uniform(CONV_INIT_BOUND), s.seed, layer_number, "mixer", "conv"
                ),
            )

    def forward(self, hidden, padding_mask=None, cache: LayerCache | None = None, document_starts=None):
        """hidden: (seq, batch, hidden); padding_mask: (batch, seq), 1 for real tokens, or None; document_starts:
        (batch, seq) bool, True where a packed document begins (conv and recurrent state restart there), or None.

        With `cache`, the sequence continues from the cache's conv and recurrent state (any chunk length, one
        token included) and the cache is updated to the end of this chunk.
        """
        x = hidden.transpose(0, 1)  # (batch, seq, hidden)
        if padding_mask is not None:  # as the official HF model: pads write nothing into conv or state
            x = x * padding_mask.unsqueeze(-1).to(x.dtype)
        if self.conv_weight is not None:
            x, conv_state = ops.short_conv(
                x,
                self.conv_weight,
                None if cache is None else cache.conv_state,
                output_final_state=cache is not None,
                backend=self.options.backend,
                document_starts=document_starts,
                conv_kernel=self.options.conv_kernel,
            )
            if cache is not None:
                cache.conv_state = conv_state
        projected, _ = self.in_proj(x)  # (batch, seq, 3 * hidden / tp): [q | decay logits | v | gate]
        if padding_mask is not None:  # v = 0 at pads, so they write nothing into the recurrent state
            key_width, _, value_width, _ = self.split_sizes
            q_and_logits, v, gate = projected.split([2 * key_width, value_width, value_width], dim=-1)
            projected = torch.cat([q_and_logits, v * padding_mask.unsqueeze(-1).to(v.dtype), gate], dim=-1)
        if cache is None:
            mixed = ops.metala_mix(
                projected,
                self.gate_bias,
                self.aug_balance,
                self.heads_per_rank,
                self.options,
                document_starts=document_starts,
            )  # (seq, batch, hidden / tp)
        else:
            if document_starts is not None:  # (without a short conv, nothing else would refuse it)
                raise ValueError("document_starts (packed documents) is for training, not for decoding with a cache")
            mixed = self._mix_from_state(projected, cache)
        out, _ = self.out_proj(mixed)  # (seq, batch, hidden)
        if cache is not None:
            cache.seen += hidden.shape[0]
        return out

    def _mix_from_state(self, projected, cache: LayerCache):
        """ops.token_mix from the cached recurrent state; returns (seq, batch, hidden / tp) like metala_mix."""
        q, decay_logits, v, gate = projected.split(self.split_sizes, dim=-1)
        heads = self.heads_per_rank
        # A chunk shorter than the kernel's chunk size would be zero-padded up to it: for one-token decode steps
        # that is chunk_size times the work of the recurrence itself.
        chunk_size = min(self.options.chunk_size, q.shape[1])
        mixed, cache.recurrent_state = ops.token_mix(
            ops.split_heads(q, heads),
            ops.split_heads(decay_logits, heads),
            ops.split_heads(v, heads),
            ops.split_heads(gate + self.gate_bias, heads),
            self.aug_balance,
            initial_state=cache.recurrent_state,
            output_final_state=True,
            backend=self.options.backend,
            chunk_size=chunk_size,
            normalizer=self.options.decay_normalizer,
        )
        return mixed.flatten(-2).transpose(0, 1)  # (seq, batch, hidden / tp)
