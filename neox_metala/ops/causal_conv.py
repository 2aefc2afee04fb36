"""Causal depthwise short convolution with SiLU (kernel 4 in MetaLA), for whole chunks and one-token decode.

The conv state is (batch, channels, kernel_size): the last kernel_size inputs seen, oldest first. That is the
layout of fla's `causal_conv1d` and of the official HF cache, so states pass between them without copies.
Unlike the official HF model, a multi-token chunk after a cache continues from the carried state instead of
restarting from zero history (spec, "defects of the official code" (1)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_conv_inputs(x, weight, conv_state):
    if x.dim() != 3:
        raise ValueError(f"short_conv: x must be (batch, seq, channels), got shape {tuple(x.shape)}")
    if weight.dim() != 2 or weight.shape[0] != x.shape[-1]:
        raise ValueError(
            f"short_conv: weight must be (channels={x.shape[-1]}, kernel_size), got shape {tuple(weight.shape)}"
        )
    expected = (x.shape[0], x.shape[-1], weight.shape[-1])
    if conv_state is not None and tuple(conv_state.shape) != expected:
        raise ValueError(
            f"short_conv: conv_state must be (batch, channels, kernel_size) = {expected}, got {tuple(conv_state.shape)}"
        )


def short_conv_torch(x, weight, conv_state=None, output_final_state=False):
    """x: (B, T, C); weight: (C, W). Returns (SiLU(causal depthwise conv), new state or None)."""
    batch, seq, channels = x.shape
    kernel_size = weight.shape[-1]
    if conv_state is None:
        history = x.new_zeros(batch, channels, kernel_size - 1)
    else:
        history = conv_state[..., 1:].to(x.dtype)
    padded = torch.cat([history, x.transpose(1, 2)], dim=-1)  # (B, C, W-1+T)
    y = F.silu(F.conv1d(padded, weight.to(x.dtype).unsqueeze(1), groups=channels)).transpose(1, 2)
    new_state = None
    if output_final_state:
        new_state = padded[..., -kernel_size:]  # T >= 1, so these are the last W inputs
    return y, new_state


def short_conv_shifted(x, weight, document_starts=None):
    """The same as short_conv_torch from a zero state, as a sum of shifted copies (fp32 sums): a form that
    torch.compile fuses with the SiLU into one elementwise kernel, forward and backward.

    document_starts (B, T) bool, for packed documents: a token's window holds only inputs of its own document
    (zero history at each document start), so documents do not mix. Fixed shapes, exact, on any device."""
    seq, kernel_size = x.shape[1], weight.shape[-1]
    padded = F.pad(x, (0, 0, kernel_size - 1, 0))  # (B, W-1+T, C): zero history before the first token
    wide = weight.to(torch.promote_types(x.dtype, torch.float32))
    terms = [padded[:, j : j + seq].to(wide.dtype) * wide[:, j] for j in range(kernel_size)]
    if document_starts is not None:
        document = document_starts.long().cumsum(1)  # (B, T): each token's document
        shifted = F.pad(document, (kernel_size - 1, 0))  # the zero history belongs to no document; its x is 0
        terms = [term * (shifted[:, j : j + seq] == document)[..., None] for j, term in enumerate(terms)]
    return F.silu(sum(terms)).to(x.dtype)


@torch.compiler.disable  # fla's Triton autograd Function runs between compiled graphs (layers/block.py)
def short_conv_fla(x, weight, conv_state=None, output_final_state=False):
    """fla's Triton causal_conv1d (training/prefill) or its one-token update (decode)."""
    from fla.modules.causal_conv1d import causal_conv1d, causal_conv1d_update

    if x.shape[1] == 1 and conv_state is not None and not torch.is_grad_enabled():
        cache = conv_state.clone()  # fla updates the cache in place; our API returns a new state
        y, cache = causal_conv1d_update(x, cache, weight=weight, activation="silu")
        return y, (cache if output_final_state else None)
    return causal_conv1d(
        x,
        weight=weight,
        initial_state=conv_state,
        output_final_state=output_final_state,
        activation="silu",
        backend="triton",
    )
