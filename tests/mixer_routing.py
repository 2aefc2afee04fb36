"""A MetaLA option reaches its op from the layer: one check for every kernel option (conv, epilogue, ...)."""

import torch

F64 = torch.float64


MIX_HEADS = 2


def mix_parameters():
    """metala_mix's leaves for MIX_HEADS heads of width 8, fp64, drawn the same for every routing test: the
    projection (B2, T70 — a partial chunk —, [q | logits | v | gate]), the gate bias and the balance."""
    gen = torch.Generator().manual_seed(5)
    width = 16
    projected = torch.randn(2, 70, 3 * width, dtype=F64, generator=gen, requires_grad=True)
    gate_bias = torch.randn(width, dtype=F64, generator=gen, requires_grad=True)
    aug_balance = torch.randn(width // 2, dtype=F64, generator=gen, requires_grad=True)
    return projected, gate_bias, aug_balance


def assert_mixer_routes(monkeypatch, option: str, ours: str, theirs: str, calls: list, leaves, **fixed) -> None:
    """A MetaLAMixer with `option`=ours (and the `fixed` options) on the fla backend, in a (stand-in) compiled
    block, calls the op once (the caller's `calls` records it), and equals the same mixer with `option`=theirs in
    fp64, output and the gradients of the input and of `leaves(mixer)`."""
    from neox_metala.layers.mixer import MetaLAMixer
    from neox_metala.layers.settings import BlockSettings
    from neox_metala.ops import MetaLAOptions, metala

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    gen = torch.Generator().manual_seed(7)
    hidden = torch.randn(9, 2, 16, dtype=F64, generator=gen)  # (seq, batch, hidden)
    cotangent = torch.randn(9, 2, 16, dtype=F64, generator=gen)

    def run(value):
        options = MetaLAOptions(**{option: value}, **fixed)
        settings = BlockSettings(hidden_size=16, num_attention_heads=2, num_layers=2, params_dtype=F64, metala=options)
        mixer = MetaLAMixer(settings, layer_number=0)
        with torch.no_grad():
            for p in mixer.parameters():
                p.copy_(torch.randn(p.shape, dtype=F64, generator=torch.Generator().manual_seed(p.numel())) * 0.4)
        inputs = hidden.clone().requires_grad_()
        output = mixer(inputs)
        return output, torch.autograd.grad(output, (inputs, *leaves(mixer)), cotangent)

    mine, my_grads = run(ours)
    assert len(calls) == 1
    expected, expected_grads = run(theirs)
    assert len(calls) == 1
    assert torch.allclose(mine, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(my_grads, expected_grads, strict=True):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)
