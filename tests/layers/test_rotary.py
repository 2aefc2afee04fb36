"""The attention baseline's RoPE: scores depend only on relative positions, norms are kept, and rotary_pct
leaves the other channels alone."""

import torch

from neox_metala.layers.attention import RotaryEmbedding


def test_scores_depend_only_on_relative_position_and_norms_are_kept():
    rotary = RotaryEmbedding(rotary_dim=8, base=10000)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 1, 8, dtype=torch.float64, generator=gen).expand(1, 12, 1, 8)
    k = torch.randn(1, 1, 1, 8, dtype=torch.float64, generator=gen).expand(1, 12, 1, 8)
    rq, rk = rotary(q), rotary(k)
    scores = torch.einsum("bthd,bshd->ts", rq, rk)
    for shift in (1, 3, 5):  # score(m, n) == score(m + s, n + s)
        assert torch.allclose(scores[:-shift, :-shift], scores[shift:, shift:], atol=1e-12)
    assert not torch.allclose(scores[0, 0], scores[0, 4])  # it does depend on the distance
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1))


def test_partial_rotation_keeps_the_remaining_channels():
    x = torch.randn(2, 5, 3, 16, dtype=torch.float64)
    out = RotaryEmbedding(rotary_dim=4, base=10000)(x)
    assert torch.equal(out[..., 4:], x[..., 4:]) and torch.equal(out[:, 0], x[:, 0])  # position 0: no rotation
