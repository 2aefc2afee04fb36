"""Checks of the token mixer's inputs (ops/metala.py's entry points): each error names the tensor, the shape it
must have and the shape it has."""

from __future__ import annotations

import torch


def check_document_starts(document_starts, x, carries_state: bool) -> None:
    """document_starts must be (batch, seq) bool like x's first two dims, and comes without carried state."""
    if document_starts.dtype != torch.bool or tuple(document_starts.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"document_starts must be a bool (batch, seq) = {tuple(x.shape[:2])} tensor, got "
            f"{document_starts.dtype} {tuple(document_starts.shape)}"
        )
    if carries_state:
        raise ValueError(
            "document_starts (packed documents) is for training and prefill from an empty state; "
            "a carried or returned state (decoding) has no document boundaries"
        )


def check_gla_inputs(q, key, v, log_decay, initial_state) -> None:
    """q, key, log_decay (B, T, H, K), v (B, T, H, V) and the initial state (B, H, K, V) or None agree."""
    if q.dim() != 4:
        raise ValueError(f"q must be (batch, seq, heads, head_k_dim), got shape {tuple(q.shape)}")
    for name, t in (("key", key), ("log_decay", log_decay)):
        if t.shape != q.shape:
            raise ValueError(f"{name} shape {tuple(t.shape)} does not match q shape {tuple(q.shape)}")
    if v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"v must be (batch, seq, heads, head_v_dim) with batch, seq, heads = "
            f"{tuple(q.shape[:3])}, got shape {tuple(v.shape)}"
        )
    expected = (q.shape[0], q.shape[2], q.shape[3], v.shape[3])
    if initial_state is not None and tuple(initial_state.shape) != expected:
        raise ValueError(
            f"initial_state must be (batch, heads, head_k_dim, head_v_dim) = {expected}, "
            f"got {tuple(initial_state.shape)}"
        )
