"""Packed documents through the layers and the model (reset_attention_mask): a packed sample with its document starts
equals each document run alone, through the spec's equations (mixer) or the step-by-step reference backend (model,
a hybrid MetaLA + attention stack), values and gradients, in fp64 on one rank."""

import pytest
import torch

from neox_metala.data.datasets import document_starts
from neox_metala.layers.mixer import MetaLAMixer
from neox_metala.layers.settings import BlockSettings
from neox_metala.model import gpt
from neox_metala.ops.options import MetaLAOptions

from spec_reference import spec_mixer

F64 = torch.float64
EOD, VOCAB = 0, 64
# Document lengths per row, EOD included (chunk 8): 1 (a lone EOD), 2, chunk-1, chunk+1, a multiple of the chunk,
# and a row whose last document runs past the sample's end (no EOD), as packed training samples do.
LENGTHS = [[1, 2, 7, 9, 8, 13], [17, 1, 22]]


def packed_tokens(lengths=LENGTHS, seed=0):
    """(tokens (rows, seq), [(row, start, length), ...]): random non-EOD tokens, each document ending in EOD
    except the last of a row."""
    gen = torch.Generator().manual_seed(seed)
    seq = sum(lengths[0])
    tokens = torch.randint(1, VOCAB, (len(lengths), seq), generator=gen)
    documents = []
    for row, row_lengths in enumerate(lengths):
        position = 0
        for index, length in enumerate(row_lengths):
            if index < len(row_lengths) - 1:
                tokens[row, position + length - 1] = EOD
            documents.append((row, position, length))
            position += length
    return tokens, documents


def randomize_(module, seed=11):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # random everything, including the parts that start at zero
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype, generator=gen) * (0.3 if p.dim() == 2 else 0.5))
    return module


def test_document_starts_are_the_tokens_after_each_eod():
    tokens = torch.tensor([[5, EOD, 7, EOD, EOD, 3], [EOD, 1, 2, 3, 4, EOD]])
    expected = torch.tensor([[0, 0, 1, 0, 1, 1], [0, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(document_starts(tokens, EOD), expected)


def test_mixer_equals_spec_equations_on_each_document(single_rank):
    width, heads = 24, 3
    settings = BlockSettings(
        hidden_size=width, num_attention_heads=heads, num_layers=2, params_dtype=F64, metala=MetaLAOptions(chunk_size=8)
    )
    mixer = randomize_(MetaLAMixer(settings, layer_number=0))
    tokens, documents = packed_tokens()
    x = torch.randn(*tokens.shape, width, dtype=F64, generator=torch.Generator().manual_seed(12))
    w_q, w_decay, w_v, w_gate = mixer.in_proj.weight.split([width // 2, width // 2, width, width])
    weights = dict(w_q=w_q, w_decay=w_decay, w_v=w_v, w_gate=w_gate, b_gate=mixer.gate_bias)
    weights.update(w_out=mixer.out_proj.weight, conv_w=mixer.conv_weight, aug=mixer.aug_balance)
    with torch.no_grad():
        ours = mixer(x.transpose(0, 1), document_starts=document_starts(tokens, EOD)).transpose(0, 1)
        for row, start, length in documents:
            alone = spec_mixer(x[row : row + 1, start : start + length], **weights, heads=heads)[0]
            err = ((ours[row, start : start + length] - alone).norm() / alone.norm()).item()
            assert err <= 1e-10, (row, start, length, err)


def hybrid_model(backend: str, layer_types=("metala", "attention", "metala")):
    metala = MetaLAOptions(backend=backend, chunk_size=8)
    settings = BlockSettings(
        hidden_size=32,
        num_attention_heads=4,
        num_layers=len(layer_types),
        params_dtype=F64,
        norm="rmsnorm",
        metala=metala,
    )
    return randomize_(gpt.SequentialModel(gpt.layer_specs(settings, list(layer_types), VOCAB, tied=True)))


@pytest.mark.parametrize("layer_types", [("metala", "attention", "metala"), ("metala",)], ids=["hybrid", "metala"])
def test_model_on_packed_documents_equals_each_document_alone(single_rank, layer_types):
    """Logits and every parameter gradient: the packed sample (chunked kernels, document starts) against each
    document alone (a model on the step-by-step reference backend with the same weights, no document starts).
    Attention layers keep the packed sample's RoPE positions: RoPE is relative, so they must not matter.
    Tolerance 1e-6, not fp64's: the block norms compute in fp32 (layers/norms.py), so one-ulp fp32 flips show."""
    packed_model, alone_model = hybrid_model("chunked", layer_types), hybrid_model("reference", layer_types)
    alone_model.load_state_dict(packed_model.state_dict())
    tokens, documents = packed_tokens()
    logits = packed_model((tokens, gpt.no_padding_mask(), document_starts(tokens, EOD)))  # (seq, rows, vocab)
    cotangent = torch.randn(logits.shape, dtype=F64, generator=torch.Generator().manual_seed(3))
    (logits * cotangent).sum().backward()
    for row, start, length in documents:
        alone = alone_model((tokens[row : row + 1, start : start + length], gpt.no_padding_mask()))
        (alone * cotangent[start : start + length, row : row + 1]).sum().backward()  # gradients add up
        packed_part = logits[start : start + length, row]
        assert ((packed_part - alone[:, 0]).norm() / alone.norm()).item() <= 1e-6, (row, start, length)
    alone_grads = dict(alone_model.named_parameters())
    for name, param in packed_model.named_parameters():
        expected = alone_grads[name].grad
        assert ((param.grad - expected).norm() / expected.norm()).item() <= 1e-6, name


def test_compiled_block_with_gpu_dispatch_and_document_starts_is_one_graph(single_rank, monkeypatch):
    """The GPU dispatch on CPU tensors (core op with document starts, masked shifted conv) compiled: document starts
    are a fixed-shape input, so the block stays one graph, and it equals the eager block."""
    from torch._dynamo.utils import counters

    from neox_metala.layers.block import ParallelBlock
    from neox_metala.ops import metala

    settings = BlockSettings(hidden_size=32, num_attention_heads=2, num_layers=1, params_dtype=F64, norm="rmsnorm")
    block = ParallelBlock(settings, 0, "metala")
    tokens, _ = packed_tokens()
    starts = document_starts(tokens, EOD)
    x = torch.randn(tokens.shape[1], tokens.shape[0], 32, dtype=F64, generator=torch.Generator().manual_seed(5))
    x.requires_grad_()
    eager = block(x, document_starts=starts)
    eager_grads = torch.autograd.grad(eager.square().sum(), [x, *block.parameters()])

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    torch._dynamo.reset()
    counters.clear()
    block.compile()
    compiled = block(x, document_starts=starts)
    compiled_grads = torch.autograd.grad(compiled.square().sum(), [x, *block.parameters()])
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], dict(counters["graph_break"])
    assert torch.allclose(compiled, eager, rtol=1e-6, atol=1e-7), (compiled - eager).abs().max()
    for got, want in zip(compiled_grads, eager_grads):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)


def test_decoding_with_a_cache_refuses_document_starts(single_rank):
    model = hybrid_model("chunked")
    tokens, _ = packed_tokens()
    with pytest.raises(ValueError, match="not for decoding with a cache|from an empty state"):
        model((tokens, gpt.no_padding_mask(), document_starts(tokens, EOD)), cache=model.new_cache())
