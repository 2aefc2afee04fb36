"""CUDA-graph decoding: the replayed step gives the eager loop's greedy tokens, with logits within bf16 noise, and
allocates nothing per token; a hybrid model (attention: a growing KV cache) decodes eagerly. Skips without a GPU."""

import logging

import pytest
import torch
from decode_helpers import PROMPTS, greedy, prefill, randomized_model

from neox_metala.model import decode
from neox_metala.model.decode import EagerDecodeStep, StaticDecodeStep, decode_step

pytestmark = pytest.mark.gpu

STEPS, BATCH_PROMPTS = 48, PROMPTS * 3  # batch 9, left-padded


def gpu_model(layer_types, dtype):
    return randomized_model(layer_types, hidden=256, vocab=512).to("cuda", dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16-fla", "fp32-chunked"])
def test_graph_replay_gives_the_eager_tokens(single_rank, dtype):
    model = gpu_model(["metala"] * 3, dtype)
    first, cache = prefill(model, BATCH_PROMPTS)
    eager_tokens, eager_logits = greedy(EagerDecodeStep(model, cache), first, STEPS)

    first, cache = prefill(model, BATCH_PROMPTS)
    step = decode_step(model, cache, cuda_graphs=True)
    assert isinstance(step, StaticDecodeStep) and step.graphed
    tokens, logits = greedy(step, first, STEPS)

    err = ((logits.float() - eager_logits.float()).norm() / eager_logits.float().norm()).item()
    differing = (tokens != eager_tokens).sum().item()
    print(f"GPU-ERR decode-graph {dtype}: logits rel {err:.2e}, tokens differing {differing} of {tokens.numel()}")
    assert torch.equal(tokens, eager_tokens)
    assert err <= (1e-2 if dtype == torch.bfloat16 else 1e-5)
    assert len(set(tokens.flatten().tolist())) > 3  # a decode that moves, not one repeated token


def test_graph_replay_allocates_nothing_per_token(single_rank):
    model = gpu_model(["metala"] * 2, torch.bfloat16)
    first, cache = prefill(model, BATCH_PROMPTS)
    step = decode_step(model, cache, cuda_graphs=True)
    tokens = first.argmax(-1)
    step(tokens)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(64):
        tokens = step(tokens).argmax(-1)
    torch.cuda.synchronize()
    # at most the rounding of the last ids' block; a tensor kept per token would be 64 blocks of 512 bytes or more
    assert torch.cuda.memory_allocated() - before <= 1024


def test_generate_tokens_same_with_and_without_graphs(single_rank, caplog):
    from neox_metala.generate import generate_tokens

    decode._logged_reasons.clear()
    for layer_types in (["metala", "metala"], ["metala", "attention"]):
        model = gpu_model(layer_types, torch.bfloat16)
        with caplog.at_level(logging.INFO, logger="neox_metala.model.decode"):
            graphed = generate_tokens(model, BATCH_PROMPTS, 40, pad_id=0, eos_id=3, vocab_limit=500, cuda_graphs=True)
        eager = generate_tokens(model, BATCH_PROMPTS, 40, pad_id=0, eos_id=3, vocab_limit=500, cuda_graphs=False)
        assert graphed == eager, layer_types
    assert caplog.text.count("KV cache") == 1  # the hybrid model: said once, decoded eagerly


def test_hybrid_model_falls_back_to_the_eager_step(single_rank):
    model = gpu_model(["metala", "attention", "metala"], torch.bfloat16)
    first, cache = prefill(model, BATCH_PROMPTS)
    step = decode_step(model, cache, cuda_graphs=True)
    assert isinstance(step, EagerDecodeStep)
    tokens, _ = greedy(step, first, 8)
    assert tokens.shape == (8, len(BATCH_PROMPTS))
