"""sizes.py against the spec's published numbers, a plain-PyTorch construction, and torch's FLOP counter."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from neox_metala import shape as shapes
from neox_metala.model import report, sizes
from neox_metala.model.sizes import count_parameters, flops_per_token, memory_estimate
from neox_metala.ops.options import MetaLAOptions
from neox_metala.shape import ModelShape


def make_shape(**overrides):
    fields = dict(
        num_layers=24,
        hidden_size=1024,
        num_attention_heads=8,
        vocab_size=50304,
        seq_length=2048,
        intermediate_size=2816,
        layer_types=("metala",) * 24,
        tied_embeddings=True,
        norm="rmsnorm",
    )
    fields.update(overrides)
    if "num_layers" in overrides and "layer_types" not in overrides:
        fields["layer_types"] = ("metala",) * overrides["num_layers"]
    return ModelShape(**fields)


# ---------------------------------------------------------------------------------------------------------------
# Spec §8.1: the Pile models' sizes were inferred by parameter arithmetic. Per MetaLA layer
# 4D² + D + 4D + D/2 (mixer) + 3DF (SwiGLU) + norms; V·D embedding (twice when untied).
#   360M, D=1024, F=2816, V=50,304, tied:  mixer 4,199,936 + MLP 8,650,752 = 12,850,688 per layer;
#       ×24 = 308,416,512; + embedding 51,511,296 = 359,927,808 without norm parameters (359.93M).
#       RMSNorm scales add (2·24 + 1)·1024 = 50,176 -> 359,977,984 = 359.98M  (the spec's number);
#       LayerNorm (weight+bias) adds 100,352 -> 360,028,160 = 360.03M.
#   1.3B, D=2048, F=5632, tied:   no norm 1,336,418,304 (1.3364B), RMSNorm 1,336,518,656 (1.3365B, spec),
#                                 LayerNorm 1,336,619,008 (1.3366B).
#   1.4B untied (+V·D = 103,022,592): no norm 1,439,440,896 (1.4394B), RMSNorm 1,439,541,248 (1.4395B, spec),
#                                 LayerNorm 1,439,641,600 (1.4396B).
# So only learned-scale RMSNorm (neox `norm: rmsnorm`, one D-vector per norm, 2 per layer + final) with every
# small mixer term (gate bias, conv, aug_balance) reproduces all three quoted figures to their last digit.
# ---------------------------------------------------------------------------------------------------------------

SPEC_SHAPES = {  # name: (hidden, ffn, tied, quoted total, decimals in the quote, unit, exact count with rmsnorm)
    "360M-tied": (1024, 2816, True, 359.98, 2, 1e6, 359_977_984),
    "1.3B-tied": (2048, 5632, True, 1.3365, 4, 1e9, 1_336_518_656),
    "1.4B-untied": (2048, 5632, False, 1.4395, 4, 1e9, 1_439_541_248),
}


@pytest.mark.parametrize("name", SPEC_SHAPES)
def test_spec_parameter_counts_match_with_rmsnorm_only(name):
    hidden, ffn, tied, quoted, decimals, unit, exact = SPEC_SHAPES[name]
    totals = {
        norm: count_parameters(make_shape(hidden_size=hidden, intermediate_size=ffn, tied_embeddings=tied, norm=norm))[
            "total"
        ]
        for norm in sizes.NORM_PARAMS_PER_CHANNEL
    }
    assert totals["rmsnorm"] == exact
    assert round(totals["rmsnorm"] / unit, decimals) == quoted
    for norm in ("layernorm", "simple_rmsnorm"):  # the other assumptions miss the quote in its last digit
        assert round(totals[norm] / unit, decimals) != quoted, norm


def test_spec_mixer_term_is_4d2_plus_5_5d():
    shape = make_shape(hidden_size=2048, intermediate_size=5632, norm="simple_rmsnorm")
    per_layer = count_parameters(shape)["per_layer_metala"]
    assert per_layer == 4 * 2048**2 + 5.5 * 2048 + 3 * 2048 * 5632  # spec §7 "4D² + 5.5D" + SwiGLU


# ---------------------------------------------------------------------------------------------------------------
# An independent plain-PyTorch construction of the same shapes, written from the spec's tables (§2.1, §3, §5.5).
# ---------------------------------------------------------------------------------------------------------------


def plain_norm(kind, width):
    if kind == "layernorm":
        return nn.LayerNorm(width)
    if kind == "rmsnorm":
        return nn.RMSNorm(width)
    return nn.Identity()  # SimpleRMSNorm: no parameters


class PlainMetaLAMixer(nn.Module):
    def __init__(self, d, kernel_size, self_augmentation):
        super().__init__()
        self.q_proj = nn.Linear(d, d // 2, bias=False)
        self.k_gate = nn.Linear(d, d // 2, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.g_proj = nn.Linear(d, d, bias=True)
        self.out_proj = nn.Linear(d, d, bias=False)
        if self_augmentation:
            self.aug_balance = nn.Parameter(torch.zeros(d // 2))
        if kernel_size:
            self.conv1d = nn.Conv1d(d, d, kernel_size, groups=d, bias=False)


class PlainAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))


class PlainBlock(nn.Module):
    def __init__(self, layer_type, d, f, norm, kernel_size, self_augmentation):
        super().__init__()
        self.norm1, self.norm2 = plain_norm(norm, d), plain_norm(norm, d)
        self.mixer = (
            PlainMetaLAMixer(d, kernel_size, self_augmentation) if layer_type == "metala" else PlainAttention(d)
        )
        self.w1, self.w3 = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)


class PlainModel(nn.Module):
    def __init__(self, shape):
        super().__init__()
        d = shape.hidden_size
        self.embed = nn.Embedding(shape.vocab_size, d)
        self.blocks = nn.ModuleList(
            PlainBlock(
                t, d, shape.intermediate_size, shape.norm, shape.metala.conv_width, shape.metala.self_augmentation
            )
            for t in shape.layer_types
        )
        self.final_norm = plain_norm(shape.norm, d)
        self.head = nn.Linear(d, shape.vocab_size, bias=False)
        if shape.tied_embeddings:
            self.head.weight = self.embed.weight


SMALL_SHAPES = {
    "metala-rmsnorm-tied": dict(norm="rmsnorm"),
    "metala-layernorm-untied": dict(norm="layernorm", tied_embeddings=False),
    "hybrid-simple-untied": dict(
        norm="simple_rmsnorm", tied_embeddings=False, layer_types=("metala", "attention", "metala")
    ),
    "attention-only-k2": dict(layer_types=("attention",) * 3, metala=MetaLAOptions(conv_kernel_size=2)),
    "metala-no-conv-no-aug": dict(metala=MetaLAOptions(short_conv=False, self_augmentation=False)),  # ablations
}


def small_shape(**overrides):
    fields = dict(
        num_layers=3,
        hidden_size=48,
        num_attention_heads=4,
        vocab_size=136,
        seq_length=40,
        intermediate_size=80,
        layer_types=("metala",) * 3,
        tied_embeddings=True,
        norm="rmsnorm",
    )
    fields.update(overrides)
    return ModelShape(**fields)


@pytest.mark.parametrize("name", SMALL_SHAPES)
def test_count_equals_numel_of_plain_construction(name):
    shape = small_shape(**SMALL_SHAPES[name])
    model = PlainModel(shape)
    counts = count_parameters(shape)
    assert counts["total"] == sum(p.numel() for p in model.parameters())  # tied weights are yielded once
    embedding = model.embed.weight.numel() + (0 if shape.tied_embeddings else model.head.weight.numel())
    assert counts["embedding"] == embedding
    assert counts["non_embedding"] == counts["total"] - embedding
    conv = sum(b.mixer.conv1d.weight.numel() for b in model.blocks if hasattr(b.mixer, "conv1d"))
    assert counts["conv"] == conv


# ---------------------------------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_SHAPES)
def test_training_flops_are_three_times_forward(name):
    shape = small_shape(**SMALL_SHAPES[name])
    forward, training = flops_per_token(shape, training=False), flops_per_token(shape, training=True)
    assert training.keys() == forward.keys()
    for key in forward:
        assert training[key] == 3 * forward[key], key


@pytest.mark.parametrize("name", SMALL_SHAPES)
def test_weight_flops_match_torch_flop_counter_on_plain_model(name):
    """Run every weight of the plain model over T tokens under torch's FlopCounterMode."""
    shape = small_shape(**SMALL_SHAPES[name])
    model, tokens = PlainModel(shape), 7
    with FlopCounterMode(display=False) as linear_counter:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module(torch.randn(tokens, module.in_features))
    with FlopCounterMode(display=False) as conv_counter:
        for module in model.modules():
            if isinstance(module, nn.Conv1d):  # causal: left-pad k−1 so there are exactly T outputs
                module(F.pad(torch.randn(1, module.in_channels, tokens), (module.kernel_size[0] - 1, 0)))
    forward = flops_per_token(shape, training=False)
    assert forward["weight_matmuls"] == linear_counter.get_total_flops() / tokens
    assert forward["conv"] == conv_counter.get_total_flops() / tokens
    counts = count_parameters(shape)  # the "6N" rule, head included even when tied
    head = shape.vocab_size * shape.hidden_size
    assert flops_per_token(shape)["weight_matmuls"] == 6 * (counts["matmul_non_embedding"] + head)


@pytest.mark.parametrize("chunk_size", [16, 64])
def test_metala_core_flops_match_counted_chunk_form(chunk_size):
    """Count one chunk's four matmuls (fla chunk_gla form) with torch, then halve the causal intra part."""
    shape = small_shape(
        num_layers=1,
        layer_types=("metala",),
        hidden_size=64,
        num_attention_heads=4,
        metala=MetaLAOptions(chunk_size=chunk_size),
    )
    dk, dv, c = shape.head_k_dim, shape.head_v_dim, chunk_size
    q, k, v, state = torch.randn(c, dk), torch.randn(c, dk), torch.randn(c, dv), torch.randn(dk, dv)
    with FlopCounterMode(display=False) as intra:
        (q @ k.T) @ v  # full C×C scores, then scores·V
    with FlopCounterMode(display=False) as inter:
        q @ state  # output from the previous chunks' state
        k.T @ v  # this chunk's contribution to the next state
    per_head_per_token = (intra.get_total_flops() / 2 + inter.get_total_flops()) / c
    expected = shape.num_attention_heads * per_head_per_token
    assert flops_per_token(shape, training=False)["metala_core"] == expected
    d, h = shape.hidden_size, shape.num_attention_heads
    assert expected == 1.5 * c * d + 2 * d * d / h  # the closed form quoted in the docstring


def test_attention_core_flops_are_causal_half_of_counted_square():
    shape = small_shape(num_layers=2, layer_types=("attention", "metala"), seq_length=32)
    t, d = shape.seq_length, shape.hidden_size
    q, k, v = torch.randn(t, d), torch.randn(t, d), torch.randn(t, d)
    with FlopCounterMode(display=False) as counter:
        torch.softmax(q @ k.T, dim=-1) @ v
    forward = flops_per_token(shape, training=False)
    assert forward["attention_core"] == counter.get_total_flops() / 2 / t  # one attention layer
    assert forward["metala_core"] > 0 and forward["conv"] == 2 * d * shape.metala.conv_width


def test_mfu_arithmetic():
    flops = 6 * 1.3e9  # per token
    assert sizes.model_tflops_per_gpu(flops, 20_000) == pytest.approx(156.0)
    assert sizes.mfu(flops, 20_000, 312.0) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------------------------


def test_memory_single_gpu_fp32_is_16_bytes_per_parameter():
    shape = small_shape()
    total = count_parameters(shape)["total"]
    memory = memory_estimate(shape, zero_stage=0, precision="fp32")
    assert (memory["weights"], memory["gradients"], memory["optimizer_states"]) == (4 * total, 4 * total, 8 * total)


def test_memory_accepts_neox_precision_names_and_rejects_others():
    shape = small_shape()
    assert memory_estimate(shape, precision="bfloat16") == memory_estimate(shape, precision="bf16")
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        memory_estimate(shape, precision="int8")


def test_memory_zero_stages_shard_over_dp():
    shape = small_shape()
    total = count_parameters(shape)["total"]
    zero1 = memory_estimate(shape, dp=4, zero_stage=1, precision="bf16")
    assert (zero1["weights"], zero1["gradients"], zero1["optimizer_states"]) == (2 * total, 2 * total, 3 * total)
    zero3 = memory_estimate(shape, dp=4, zero_stage=3, precision="bf16")
    assert (zero3["weights"], zero3["gradients"]) == (total / 2, total / 2)


def test_memory_tensor_parallel_replicates_only_conv_and_norms():
    shape = small_shape(tied_embeddings=False)
    counts = count_parameters(shape)
    replicated = counts["conv"] + counts["norms"]
    memory = memory_estimate(shape, tp=2)
    assert memory["parameters_per_gpu"] == (counts["total"] - replicated) / 2 + replicated


def test_memory_pipeline_worst_stage_holds_tied_head_copy_and_final_norm():
    shape = small_shape(num_layers=4, layer_types=("metala",) * 4, tied_embeddings=True)
    counts = count_parameters(shape)
    per_layer, embed, final_norm = counts["per_layer_metala"], counts["input_embedding"], shape.hidden_size
    first, last = memory_estimate(shape, pp=2)["per_stage"]
    assert first["parameters_per_gpu"] == 2 * per_layer + embed
    assert last["parameters_per_gpu"] == 2 * per_layer + embed + final_norm
    # 1F1B: the first stage keeps two micro-batches in flight, the last one plus its fp32 logits
    tokens, vocab = shape.seq_length, shape.vocab_size
    assert first["activations"] - 2 * (last["activations"] - tokens * vocab * 4) == 0


def test_memory_reports_the_worst_stage():
    shape = make_shape(hidden_size=2048, intermediate_size=5632)
    memory = memory_estimate(shape, pp=4, micro_batch=2)
    assert memory["total"] == max(entry["total"] for entry in memory["per_stage"])
    assert memory["stage"] == 0  # four micro-batches in flight outweigh the head and logits of the last stage


def test_memory_activations_scale_with_micro_batch_and_shrink_with_checkpointing():
    shape = make_shape()
    one, two = (memory_estimate(shape, micro_batch=b)["activations"] for b in (1, 2))
    assert two == 2 * one
    assert memory_estimate(shape, checkpoint_activations=True)["activations"] < one / 4


def test_shape_validation_names_the_values():
    with pytest.raises(ValueError, match="layer_types has 2 entries but num_layers is 3"):
        small_shape(layer_types=("metala", "metala"))
    with pytest.raises(ValueError, match="'mamba'"):
        small_shape(layer_types=("metala", "mamba", "metala"))
    with pytest.raises(ValueError, match="hidden_size 48 must be divisible by 2 \\* num_attention_heads = 10"):
        small_shape(num_attention_heads=5)
    assert dataclasses.is_dataclass(small_shape())


def test_helpers_follow_neox_rules():
    assert [shapes.default_intermediate_size(d) for d in (768, 1024, 1536, 2048, 2560)] == [
        2048,
        2816,
        4096,
        5632,
        6912,
    ]  # spec §3.1
    assert shapes.padded_vocab_size(50277) == 50304
    assert shapes.padded_vocab_size(50277, tp=4) == 50688


def test_cli_prints_the_table(capsys):
    report.main(["--num-layers", "24", "--hidden-size", "2048", "--no-weight-tying", "--tp", "2", "--dp", "4"])
    out = capsys.readouterr().out
    # GPT-NeoX-20B's 50,277 tokens pad to 50,432 at TP=2 (a multiple of 128 x 2): 2 x 128 x 2048 more than
    # the 1,439,541,248 of the spec's untied 1.4B at 50,304.
    assert "1,440,065,536" in out and "memory / GPU" in out and "tp=2" in out
    with pytest.raises(SystemExit, match="num_layers is 2"):
        report.main(["--num-layers", "2", "--hidden-size", "64", "--layer-types", "metala,attention,metala"])
