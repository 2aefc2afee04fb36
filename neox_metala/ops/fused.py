"""MetaLA between the input and the output projection as one autograd Function: the GPU fast path.

    projected [q | decay logits | v | gate]  --prologue-->  q, key, log α, v (contiguous, what the core reads)
                                             --core------>  o = GLA recurrence (fla chunk_gla fwd)
                                             --epilogue-->  y = SiLU(gate + b) ⊙ LN_head(o + σ((Σ q·key·w)·v))

Why one Function: autograd around the separate pieces keeps ~6 extra activations alive and runs a dozen
elementwise kernels plus layout copies. Here the forward saves only `projected`, `o` and the core's intra-chunk
scores; key, log α and the epilogue are recomputed in the backward, whose gradients are written straight into
one buffer shaped like `projected` (what the input projection's backward reads). The prologue, epilogue and
gradient-combine steps are plain torch functions with hand-derived backward formulas, fused into a few Triton
kernels by torch.compile on CUDA; uncompiled they run anywhere, which is how the CPU tests check them in fp64
(tests/ops/test_fused_cpu.py) and in bf16 around an exact core (tests/ops/test_fused_precision_cpu.py).
"""

from __future__ import annotations

import functools

import torch

from .core_op import fla_chunk_backward, fla_chunk_forward
from .metala import augment_norm_gate, decay_and_key
from .options import DEFAULT_CHUNK_SIZE, projection_widths


def _wide(dtype):
    return torch.promote_types(dtype, torch.float32)  # fp32 math for half inputs; fp64 stays fp64 (tests)


def _aug_terms(q, logits, v, aug_balance, heads: int, normalizer: float):
    """key, w, a = Σ_k q·key·w and σ(a·v), all (B, T, H, ·) in the compute dtype."""
    key = decay_and_key(logits, normalizer)[1]
    w = aug_balance.to(q.dtype).view(heads, -1)
    aug_weight = (q * key * w).sum(-1, keepdim=True)
    return key, w, aug_weight, torch.sigmoid(aug_weight * v)


def _split_wide(projected, heads: int):
    width, wide = projected.shape[-1] // 3, _wide(projected.dtype)
    return (t.to(wide).unflatten(-1, (heads, -1)) for t in projected.split(projection_widths(width), dim=-1))


def prologue(projected, heads: int, normalizer: float):
    """projected (B, T, 3W) -> q, key (compute dtype), log_decay (fp32), v: (B, T, H, ·), contiguous."""
    width = projected.shape[-1] // 3  # W: value width of this rank; q and decay logits take W/2 each
    q, logits, v, _ = projected.split(projection_widths(width), dim=-1)
    log_decay, key = decay_and_key(logits, normalizer)
    unflat = lambda t: t.unflatten(-1, (heads, -1)).contiguous()  # noqa: E731
    return unflat(q), unflat(key.to(projected.dtype)), unflat(log_decay), unflat(v)


def epilogue(o, projected, gate_bias, aug_balance, heads: int, normalizer: float, eps: float, seq_first: bool):
    """y = SiLU(gate + b) ⊙ LN_head(o + σ(a·v)), a = Σ_k q·key·w; (B, T, W), or (T, B, W) when seq_first."""
    q, logits, v, gate = _split_wide(projected, heads)
    key = decay_and_key(logits, normalizer)[1]
    gate = gate + gate_bias.to(gate.dtype).view(heads, -1)
    y = augment_norm_gate(o, q, key, v, aug_balance, gate, eps).flatten(-2).to(projected.dtype)
    return y.transpose(0, 1).contiguous() if seq_first else y


def epilogue_backward(
    dy, o, projected, gate_bias, aug_balance, heads: int, normalizer: float, eps: float, seq_first: bool
):
    """Gradients of `epilogue` for o (in o's dtype: what the core's backward reads), the gate (pre-activation,
    in the input dtype: a slice of the final gradient), and the summed d b and d w. Per head vector:
        dn = dy ⊙ s;  dz = r (dn − mean(dn) − n·mean(dn ⊙ n))      (LayerNorm without affine)
    The self-augmentation's parts of dq, d key, dv are recomputed from dz by `combine_gradients`, so that no
    fp32 partial gradient is written to memory between the two.
    """
    wide = _wide(projected.dtype)
    if seq_first:
        dy = dy.transpose(0, 1)
    dy = dy.to(wide).unflatten(-1, (heads, -1))
    q, logits, v, gate = _split_wide(projected, heads)
    gate = gate + gate_bias.to(wide).view(heads, -1)
    z = o.to(wide)
    if aug_balance is not None:
        key, w, aug_weight, sig = _aug_terms(q, logits, v, aug_balance, heads, normalizer)
        z = z + sig
    mean = z.mean(-1, keepdim=True)
    rstd = torch.rsqrt(z.var(-1, unbiased=False, keepdim=True) + eps)
    normed = (z - mean) * rstd
    gate_sig = torch.sigmoid(gate)
    dnormed = dy * gate * gate_sig
    d_gate = dy * normed * gate_sig * (1 + gate * (1 - gate_sig))
    dz = rstd * (dnormed - dnormed.mean(-1, keepdim=True) - normed * (dnormed * normed).mean(-1, keepdim=True))
    d_aug = None
    if aug_balance is not None:
        d_aug_weight = (dz * sig * (1 - sig) * v).sum(-1, keepdim=True)
        d_aug = (d_aug_weight * q * key).sum((0, 1)).flatten()
    return dz.to(o.dtype), d_gate.to(projected.dtype), d_gate.sum((0, 1)).flatten(), d_aug


def combine_gradients(projected, core_grads, d_o, d_gate, aug_balance, heads: int, normalizer: float):
    """One (B, T, 3W) gradient for `projected`: [dq | d decay logits | dv | d gate], from the core's
    (dq, dkey, dv, d log α), the self-augmentation's parts (recomputed from d o = dz):
        dsig = dz ⊙ σ(a v)(1 − σ(a v));  da = Σ dsig ⊙ v;  dq += da·key·w;  dkey += da·q·w;  dv += dsig·a
    and the decay: log α = logsigmoid(l)/τ, key = 1 − e^{log α}  =>  d l = (d log α − d key · e^{log α}) σ(−l)/τ.
    """
    wide = _wide(projected.dtype)
    dq, dkey, dv, dlog_decay = (t.to(wide) for t in core_grads)
    q, logits, v, _ = _split_wide(projected, heads)
    if aug_balance is not None:
        key, w, aug_weight, sig = _aug_terms(q, logits, v, aug_balance, heads, normalizer)
        dsig = d_o.to(wide) * sig * (1 - sig)
        d_aug_weight = (dsig * v).sum(-1, keepdim=True)
        dq, dkey, dv = dq + d_aug_weight * key * w, dkey + d_aug_weight * q * w, dv + dsig * aug_weight
    decay = decay_and_key(logits, normalizer)[0].exp()
    dlogits = (dlog_decay - dkey * decay) * torch.sigmoid(-logits) / normalizer
    parts = [p.flatten(-2).to(projected.dtype) for p in (dq, dlogits, dv)]
    return torch.cat(parts + [d_gate.flatten(-2)], dim=-1)


class TorchCore:
    """The GLA core in pure PyTorch (chunked form): lets the CPU tests run this whole Function in fp64."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.chunk_size = chunk_size

    def forward(self, q, key, v, log_decay, scale, document_starts=None):
        from .chunked import chunked_gla

        output, _ = chunked_gla(
            q, key, v, log_decay, scale, chunk_size=self.chunk_size, document_starts=document_starts
        )
        return output, None

    def backward(self, q, key, v, log_decay, scale, saved, d_output, document_starts=None):
        from .chunked import chunked_gla

        with torch.enable_grad():
            inputs = [t.detach().requires_grad_() for t in (q, key, v, log_decay)]
            output, _ = chunked_gla(*inputs, scale, chunk_size=self.chunk_size, document_starts=document_starts)
            return torch.autograd.grad(output, inputs, d_output)


class FlaCore:
    """fla's chunk_gla kernels, keeping only the intra-chunk scores for the backward (ops/core_op.py)."""

    def forward(self, q, key, v, log_decay, scale, document_starts=None):
        return fla_chunk_forward(q, key, v, log_decay, scale, document_starts)

    def backward(self, q, key, v, log_decay, scale, scores, d_output, document_starts=None):
        # fla's internal chunk_gla_bwd reads [B, T, H, V] by pointer arithmetic (its own Function makes its inputs
        # contiguous; the custom op in core_op.py does too): the compiled epilogue's d_output has no such guarantee
        d_output = d_output.contiguous()
        return fla_chunk_backward(q, key, v, log_decay, scale, scores, d_output, document_starts)


class Kernels:
    """The four elementwise steps, eager or fused into Triton kernels by torch.compile."""

    def __init__(self, compile_them: bool):
        if compile_them:  # each (shape, dtype, self-aug on/off) variant is one more compilation of each step
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        # Static shapes: a training run has one. Dynamic-shape recompiles (what a second shape triggers by default)
        # crashed inductor's GPU code generation for some shapes and gave ~1e-2 gradient errors for others
        # (torch 2.11, H100), so every shape compiles its own kernels.
        wrap = functools.partial(torch.compile, fullgraph=True, dynamic=False) if compile_them else (lambda f: f)
        self.prologue, self.epilogue = wrap(prologue), wrap(epilogue)
        self.epilogue_backward, self.combine = wrap(epilogue_backward), wrap(combine_gradients)


class FusedTokenMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first, core, kernels, starts):
        q, key, log_decay, v = kernels.prologue(projected, heads, normalizer)
        scale = q.shape[-1] ** -0.5  # fla's default, which the official code relies on (spec §2.6)
        output, saved = core.forward(q, key, v, log_decay, scale, starts)
        y = kernels.epilogue(output, projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first)
        ctx.save_for_backward(projected, gate_bias, aug_balance, output, saved, starts)
        ctx.settings = (heads, normalizer, eps, seq_first, core, kernels, scale)
        return y

    @staticmethod
    def backward(ctx, dy):
        projected, gate_bias, aug_balance, output, saved, starts = ctx.saved_tensors
        heads, normalizer, eps, seq_first, core, kernels, scale = ctx.settings
        d_output, d_gate, d_gate_bias, d_aug = kernels.epilogue_backward(
            dy.contiguous(), output, projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first
        )
        q, key, log_decay, v = kernels.prologue(projected, heads, normalizer)
        core_grads = core.backward(q, key, v, log_decay, scale, saved, d_output, starts)
        del q, key, log_decay, v
        d_projected = kernels.combine(projected, core_grads, d_output, d_gate, aug_balance, heads, normalizer)
        d_aug = d_aug.to(aug_balance.dtype) if aug_balance is not None else None
        return d_projected, d_gate_bias.to(gate_bias.dtype), d_aug, None, None, None, None, None, None, None


@functools.cache
def _compiled_kernels() -> Kernels:
    return Kernels(compile_them=True)


EAGER_KERNELS = Kernels(compile_them=False)


@torch.compiler.disable  # has its own compiled steps around fla's kernels; a block's graph ends here
def fused_token_mix(
    projected,
    gate_bias,
    aug_balance,
    heads: int,
    *,
    normalizer: float,
    eps: float,
    seq_first: bool,
    core=None,
    kernels: Kernels | None = None,
    document_starts=None,
):
    """projected (B, T, 3W) = [q | decay logits | v | gate] of this rank's heads -> y (B, T, W), or (T, B, W).
    document_starts (B, T) bool or None: the core restarts from a zero state there (packed documents).

    Default: fla's core and compiled kernels (CUDA). Tests pass `TorchCore()` and `EAGER_KERNELS`.
    """
    core = core or FlaCore()
    kernels = kernels or _compiled_kernels()
    return FusedTokenMix.apply(
        projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first, core, kernels, document_starts
    )
