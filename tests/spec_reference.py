"""The MetaLA token mixer transcribed line by line from shared/design/metala-spec.md §2.12: the independent reference
of the layer tests and of the official-layout model the export tests build."""

import torch
import torch.nn.functional as F


def spec_mixer(x, w_q, w_decay, w_v, w_gate, b_gate, w_out, conv_w, aug, heads):
    """shared/design/metala-spec.md §2.12 line by line (x: (B, T, D)); conv_w / aug None leave a part out."""
    batch, seq, width = x.shape
    dk, dv = width // (2 * heads), width // heads
    xc = x
    if conv_w is not None:
        xc = F.silu(F.conv1d(x.transpose(1, 2), conv_w[:, None, :], padding=3, groups=width)[..., :seq])
        xc = xc.transpose(1, 2)
    q, gl, v, g = xc @ w_q.T, xc @ w_decay.T, xc @ w_v.T, xc @ w_gate.T + b_gate
    la = F.logsigmoid(gl) / 16
    a = la.exp()
    k = 1 - a
    q, k, a = (t.view(batch, seq, heads, dk) for t in (q, k, a))
    v = v.view(batch, seq, heads, dv)
    state = x.new_zeros(batch, heads, dk, dv)
    out = []
    for t in range(seq):
        state = a[:, t, :, :, None] * state + k[:, t, :, :, None] * v[:, t, :, None, :]
        o = (dk**-0.5) * torch.einsum("bhk,bhkv->bhv", q[:, t], state)
        if aug is not None:
            w = (q[:, t] * k[:, t] * aug.view(heads, dk)).sum(-1, keepdim=True)
            o = o + torch.sigmoid(w * v[:, t])
        out.append(F.layer_norm(o, (dv,), eps=1e-5))
    o = torch.stack(out, 1).reshape(batch, seq, width)
    return (F.silu(g) * o) @ w_out.T
