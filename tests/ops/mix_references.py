"""fp64 references for `ops.metala_mix` (the token mix between a layer's projections), built from ops/reference.py
only, for the precision tests on the CPU (test_fused_precision_cpu.py) and the GPU (test_fused_gpu.py).

Why three references. The per-head LayerNorm's input is z = o + σ(a·v), with o the recurrence's output and a the
self-augmentation weight. At a sequence's first token o = scale·(q·key)·v exactly, and σ(a·v) ≈ 1/2 + a·v/4: the two
can cancel, z is then nearly constant and the LayerNorm nearly singular. There, any error in o (the core's inputs
and output in bf16) is amplified in the gradients of aug_balance, q and the decay logits: with the exact core and
only key and o rounded to bf16, d aug_balance is 4.6e-3, 8.6e-3, 3.3e-2 and 4.7e-2 off fp64 for the B3-T100-H3
draws of seeds 0-3 (test_fused_precision_cpu.py's inputs), d projected up to 1.8e-2. LayerNorm alone does not do
this: it is invariant to the scale of o, which is why the same errors without self-augmentation stay ~3e-3.
  * `reference_mix`: the fp64 answer (what the acceptance measures against);
  * `reference_mix(o_value=...)`: the same with the core's output replaced by a given one (its value only; the
    gradients still flow through the exact recurrence): what remains against it is everything but the core's
    forward error, i.e. the path's own elementwise math and the core's backward;
  * `reference_mix(bf16_core_io=True)`: the recurrence fed the bf16-rounded key and its output rounded to bf16,
    exact otherwise: the error that any core with bf16 inputs and output makes, whatever its kernels.

The recurrence runs step by step (ops/reference.py) or, with `chunk_size`, in the chunked form (ops/chunked.py):
in fp64 the two agree to ~1e-15, forward and gradients (test_ops_cpu.py, and test_fused_precision_cpu.py on these
references), and on a GPU the chunked form is a few dozen large kernels where the step-by-step loop launches
~20 small ones per token each way, seconds per reference at T=2048.
"""

import torch

from neox_metala.ops import reference
from neox_metala.ops.chunked import chunked_gla


def rel_err(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def split_projected(projected, heads):
    """(B, T, 3W) -> q, decay logits (B, T, H, W/(2H)) and v, gate (B, T, H, W/H); the layout of projection_widths."""
    width = projected.shape[-1] // 3
    parts = projected.split([width // 2, width // 2, width, width], dim=-1)
    return [t.unflatten(-1, (heads, -1)) for t in parts]


def gradient_parts(d_projected, heads):
    """A gradient of `projected` split as the tensors it feeds, each with its own relative error."""
    return dict(zip(("q", "decay_logits", "v", "gate"), split_projected(d_projected, heads)))


def mix_errors(ours, grads, expected, expected_grads, heads):
    """{part: relative error}: the output, d projected and its parts (q, decay logits, v, gate), d gate_bias and
    d aug_balance (when given); grads and expected_grads are those of (projected, gate_bias[, aug_balance])."""
    errors = {"output": rel_err(ours, expected), "grad-projected": rel_err(grads[0], expected_grads[0])}
    parts, expected_parts = gradient_parts(grads[0], heads), gradient_parts(expected_grads[0], heads)
    errors.update({f"grad-{n}": rel_err(parts[n], expected_parts[n]) for n in parts})
    names = ("grad-gate_bias", "grad-aug_balance")
    errors.update({n: rel_err(g, e) for n, g, e in zip(names, grads[1:], expected_grads[1:])})
    return errors


def exact_recurrence(q, key, v, log_decay, scale, chunk_size=None):
    """o of the GLA recurrence from a zero state, in the inputs' dtype: step by step, or chunked (module docstring)."""
    if chunk_size is None:
        return reference.recurrent_gla_reference(q, key, v, log_decay, scale)[0]
    return chunked_gla(q, key, v, log_decay, scale, chunk_size=chunk_size)[0]


def reference_mix(
    projected, gate_bias, aug_balance, heads, *, seq_first, o_value=None, bf16_core_io=False, chunk_size=None
):
    """y (T, B, W) if seq_first else (B, T, W), in projected's dtype (fp64 for the tests); see the module docstring.
    chunk_size: None for the step-by-step recurrence, else its chunked form (equal in fp64, faster on a GPU)."""
    q, logits, v, gate = split_projected(projected, heads)
    if aug_balance is None:  # no self-augmentation: a zero balance adds 1/2 everywhere, which the LayerNorm removes
        aug_balance = projected.new_zeros(q.shape[-2] * q.shape[-1])
    log_decay, key = reference.decay_and_key_reference(logits)
    scale = q.shape[-1] ** -0.5
    # rounded values, exact gradients (a round trip through bf16 would round the gradient too)
    core_key = key + (key.to(torch.bfloat16).to(key.dtype) - key).detach() if bf16_core_io else key
    output = exact_recurrence(q, core_key, v, log_decay, scale, chunk_size)
    if bf16_core_io:
        o_value = output.detach().to(torch.bfloat16)
    if o_value is not None:
        output = output + (o_value.to(output.dtype) - output).detach()
    gate = gate + gate_bias.view(heads, -1)
    y = reference.augment_norm_gate_reference(output, q, key, v, aug_balance, gate).flatten(-2)
    return y.transpose(0, 1) if seq_first else y
