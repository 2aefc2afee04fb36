"""MetaLAMixer and the model on one rank, against a direct transcription of the spec's equations (fp64)."""

import pytest
import torch
import torch.nn.functional as F

from neox_metala.layers.mixer import MetaLAMixer
from neox_metala.layers.settings import BlockSettings, check_head_split
from neox_metala.model import gpt
from neox_metala.ops.options import MetaLAOptions

from spec_reference import spec_mixer

F64 = torch.float64


def randomized_mixer(width, heads, **overrides):
    settings = BlockSettings(hidden_size=width, num_attention_heads=heads, num_layers=2, params_dtype=F64, **overrides)
    mixer = MetaLAMixer(settings, layer_number=0)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():  # random everything, including the parts that start at zero
        for p in mixer.parameters():
            p.copy_(torch.randn(p.shape, dtype=F64, generator=gen) * (0.3 if p.dim() == 2 else 0.5))
    return mixer


def spec_weights(mixer, width):
    w_q, w_decay, w_v, w_gate = mixer.in_proj.weight.split([width // 2, width // 2, width, width])
    return dict(
        w_q=w_q,
        w_decay=w_decay,
        w_v=w_v,
        w_gate=w_gate,
        b_gate=mixer.gate_bias,
        w_out=mixer.out_proj.weight,
        conv_w=mixer.conv_weight,
        aug=mixer.aug_balance,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="full"),
        pytest.param({"self_augmentation": False}, id="without-self-augmentation"),
        pytest.param({"short_conv": False}, id="without-short-conv"),
    ],
)
def test_mixer_equals_spec_equations_fp64(single_rank, overrides):
    width, heads = 24, 3
    mixer = randomized_mixer(width, heads, metala=MetaLAOptions(chunk_size=8, **overrides))
    x = torch.randn(2, 19, width, dtype=F64, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        ours = mixer(x.transpose(0, 1)).transpose(0, 1)  # the layer is seq-first
        expected = spec_mixer(x, **spec_weights(mixer, width), heads=heads)
    assert ((ours - expected).norm() / expected.norm()).item() <= 1e-6


def test_left_padding_leaves_real_tokens_unchanged(single_rank):
    width, heads, pad = 16, 2, 5
    mixer = randomized_mixer(width, heads, metala=MetaLAOptions(chunk_size=4))
    x = torch.randn(1, 9, width, dtype=F64, generator=torch.Generator().manual_seed(13))
    padded = torch.cat([torch.randn(1, pad, width, dtype=F64), x], dim=1)
    mask = torch.cat([torch.zeros(1, pad, dtype=torch.bool), torch.ones(1, 9, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        alone = mixer(x.transpose(0, 1))
        with_pads = mixer(padded.transpose(0, 1), padding_mask=mask)[pad:]
    assert torch.allclose(with_pads, alone, rtol=1e-10, atol=1e-12)


def test_bad_head_split_names_both_numbers():
    with pytest.raises(ValueError, match="hidden_size 30 is not divisible by num_attention_heads 4"):
        check_head_split(30, 4, 1)
    with pytest.raises(ValueError, match="num_attention_heads 6 is not divisible by model_parallel_size 4"):
        check_head_split(48, 6, 4)


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_model_specs_build_tied_and_untied_heads(single_rank, tied):
    settings = BlockSettings(hidden_size=32, num_attention_heads=4, num_layers=2)
    model = gpt.SequentialModel(gpt.layer_specs(settings, ["metala", "metala"], 64, tied=tied))
    tokens = torch.randint(0, 64, (2, 9))
    logits = model((tokens[:, :-1], gpt.no_padding_mask()))
    assert logits.shape == (8, 2, 64)
    embedding = model.layers[0].word_embeddings.weight
    head = [p for n, p in model.named_parameters() if n.endswith("proj.weight") and p.shape == embedding.shape]
    assert len(head) == (0 if tied else 1)  # tied: the head is the embedding itself, no extra matrix
    expected = F.linear(final_hidden(model, tokens[:, :-1]), embedding if tied else head[0])
    assert torch.allclose(logits, expected, atol=1e-6)


def final_hidden(model, tokens):
    """Run every layer but the head (the final norm returns the hidden state alone)."""
    x = (tokens, gpt.no_padding_mask())
    for index, _ in model._calls[:-1]:
        x = model.layers[index](x)
    return x
