"""Transformer++ self-attention baseline: RoPE, PyTorch SDPA (flash/cuDNN on GPU), heads split across TP ranks.

Used for fair speed comparisons and in hybrid stacks (`attention_config: [[["metala", "attention"], 12]]`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import parallel
from . import init
from .cache import LayerCache
from .settings import BlockSettings, check_head_split


def rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


class RotaryEmbedding(nn.Module):
    """RoPE on the first `rotary_dim` channels of each head (GPT-NeoX's rotary_pct), halves rotated; cos/sin
    tables are cached per sequence length, device and dtype (as GPT-NeoX and HF do).
    x (batch, seq, heads, head_dim) -> same shape."""

    def __init__(self, rotary_dim: int, base: int):
        super().__init__()
        self.rotary_dim = rotary_dim
        inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._tables = {}

    def _cos_sin(self, seq: int, device, dtype, offset: int = 0):
        key = (seq, device, dtype, offset)
        if key not in self._tables:
            positions = torch.arange(offset, offset + seq, device=device, dtype=torch.float32)
            angles = torch.outer(positions, self.inv_freq.to(device))  # (seq, rotary_dim / 2)
            angles = torch.cat([angles, angles], dim=-1)[None, :, None, :]  # (1, seq, 1, rotary_dim)
            self._tables = {key: (angles.cos().to(dtype), angles.sin().to(dtype))}  # keep one: lengths are few
        return self._tables[key]

    def forward(self, x, offset: int = 0):
        """x: (batch, seq, heads, head_dim) at positions offset, offset + 1, ..."""
        cos, sin = self._cos_sin(x.shape[1], x.device, x.dtype, offset)
        if self.rotary_dim == x.shape[-1]:
            return x * cos + rotate_half(x) * sin
        rotary, passthrough = x[..., : self.rotary_dim], x[..., self.rotary_dim :]
        return torch.cat([rotary * cos + rotate_half(rotary) * sin, passthrough], dim=-1)


class ParallelSelfAttention(nn.Module):
    """Causal softmax attention, this rank's heads: hidden (seq, batch, hidden) -> (seq, batch, hidden)."""

    def __init__(self, settings: BlockSettings, layer_number: int):
        super().__init__()
        hidden, heads = settings.hidden_size, settings.num_attention_heads
        tp = parallel.tensor_parallel_size()
        check_head_split(hidden, heads, tp)
        self.heads_per_rank, self.head_dim = heads // tp, hidden // heads
        self.local_width = self.heads_per_rank * self.head_dim
        rotary_dim = int(self.head_dim * settings.rotary_pct) // 2 * 2
        self.rotary = RotaryEmbedding(rotary_dim, settings.rotary_emb_base) if rotary_dim else None
        self.attention_dropout = settings.attention_dropout
        config = parallel.linear_config(settings.params_dtype)
        self.qkv_proj = parallel.ColumnParallelLinear(
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
        self._initialize(settings, layer_number)

    def _initialize(self, s: BlockSettings, layer_number: int) -> None:
        std, out_std = init.stds(s)
        full = (s.hidden_size, s.hidden_size)
        shards = [
            init.local_shard(full, 0, init.normal(std), s.seed, layer_number, "attention", name)
            for name in ("q_proj", "k_proj", "v_proj")
        ]
        init.fill_(self.qkv_proj.weight, torch.cat(shards))
        init.fill_(
            self.out_proj.weight,
            init.local_shard(full, 1, init.normal(out_std), s.seed, layer_number, "attention", "out_proj"),
        )
        init.mark_tensor_parallel(self.qkv_proj.weight, 0, (s.hidden_size,) * 3)
        init.mark_tensor_parallel(self.out_proj.weight, 1)

    def forward(self, hidden, padding_mask=None, cache: LayerCache | None = None, document_starts=None):
        """hidden: (seq, batch, hidden); padding_mask: (batch, seq) or None; document_starts: (batch, seq) bool,
        True where a packed document begins: each token attends only within its document. With `cache`, attends
        to the cached keys and values too and appends this chunk's to it."""
        qkv, _ = self.qkv_proj(hidden.transpose(0, 1))  # (batch, seq, 3 * hidden / tp)
        q, k, v = (
            t.unflatten(-1, (self.heads_per_rank, self.head_dim)) for t in qkv.split(self.local_width, dim=-1)
        )  # (batch, seq, heads/tp, head_dim)
        offset = 0 if cache is None else cache.seen
        if self.rotary is not None:
            q, k = self.rotary(q, offset), self.rotary(k, offset)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, heads/tp, seq, head_dim)
        if cache is not None:
            if document_starts is not None:
                raise ValueError("document_starts (packed documents) is for training, not for decoding with a cache")
            attended = self._attend_with_cache(q, k, v, padding_mask, cache)
        elif padding_mask is None and document_starts is None:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self._dropout_p())
        else:
            allowed = self._allowed(q.shape[2], padding_mask, document_starts, q.device)
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=self._dropout_p())
        out, _ = self.out_proj(attended.permute(2, 0, 1, 3).flatten(-2))  # (seq, batch, hidden)
        return out

    def _dropout_p(self) -> float:
        return self.attention_dropout if self.training else 0.0

    @staticmethod
    def _allowed(seq, padding_mask, document_starts, device):
        """(batch or 1, 1, seq, seq) bool: causal, within one packed document, and never onto a pad. RoPE positions
        stay those of the whole sample: it is relative, so a document's scores do not depend on where it sits."""
        allowed = torch.ones(seq, seq, dtype=torch.bool, device=device).tril()[None, None]
        if document_starts is not None:  # block-diagonal, as Megatron-LM's reset_attention_mask
            document = document_starts.long().cumsum(1)  # (batch, seq)
            allowed = allowed & (document[:, None, :, None] == document[:, None, None, :])
        if padding_mask is not None:
            allowed = allowed & padding_mask.bool()[:, None, None, :]
            allowed = allowed | torch.eye(seq, dtype=torch.bool, device=device)  # pads attend to themselves
        return allowed

    @staticmethod
    def _attend_with_cache(q, k, v, padding_mask, cache: LayerCache):
        """Causal attention over cached + new keys; pads (remembered in the cache) are never attended to."""
        seq, past = q.shape[2], cache.seen
        if cache.keys is not None:
            k, v = torch.cat([cache.keys, k], dim=2), torch.cat([cache.values, v], dim=2)
        if padding_mask is not None or cache.key_mask is not None:
            new_mask = (
                torch.ones(q.shape[0], seq, dtype=torch.bool, device=q.device)
                if padding_mask is None
                else padding_mask.bool()
            )
            old_mask = (
                torch.ones(q.shape[0], past, dtype=torch.bool, device=q.device)
                if cache.key_mask is None
                else cache.key_mask
            )
            cache.key_mask = torch.cat([old_mask, new_mask], dim=1)  # (batch, past + seq)
        cache.keys, cache.values, cache.seen = k, v, past + seq
        positions = torch.arange(past + seq, device=q.device)
        allowed = positions[None, :] <= positions[past:, None]  # (seq, past + seq): causal
        if cache.key_mask is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        allowed = allowed[None, None] & cache.key_mask[:, None, None, :]
        allowed = allowed | (positions[None, :] == positions[past:, None])  # pads attend to themselves
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
