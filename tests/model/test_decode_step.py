"""The static-buffer decode step (what a CUDA graph records) equals the plain cached decode, run eagerly on CPU in
fp32: the same logits and greedy tokens over many steps, for a left-padded batch; and the choice of step."""

import pytest
import torch
from decode_helpers import PROMPTS, greedy, prefill, randomized_model

from neox_metala.model import gpt
from neox_metala.model.decode import EagerDecodeStep, StaticDecodeStep, decode_step, graph_blocker

STEPS = 20


@pytest.mark.parametrize("short_conv", [True, False], ids=["short_conv", "no_conv"])
def test_static_step_equals_the_cached_decode(single_rank, short_conv):
    model = randomized_model(["metala", "metala"], short_conv=short_conv)
    first, cache = prefill(model, PROMPTS)
    expected_tokens, expected_logits = greedy(EagerDecodeStep(model, cache), first, STEPS)

    first, cache = prefill(model, PROMPTS)
    static = StaticDecodeStep(model, cache, capture=False)
    buffers = [(conv_state, recurrent_state.clone()) for conv_state, recurrent_state in static.buffers]
    tokens, logits = greedy(static, first, STEPS)

    assert torch.equal(tokens, expected_tokens)
    assert (logits - expected_logits).abs().max().item() <= 1e-6
    assert len(set(expected_tokens.flatten().tolist())) > 3  # a decode that moves, not one repeated token
    # the state stays in the static buffers, updated in place, and the caller's cache points at them
    for layer_cache, (conv_state, recurrent_state), (_, prefilled) in zip(cache, static.buffers, buffers):
        assert layer_cache.recurrent_state is recurrent_state and layer_cache.conv_state is conv_state
        assert (conv_state is None) == (not short_conv)
        assert not torch.equal(recurrent_state, prefilled)
        assert layer_cache.seen == len(PROMPTS[0]) + STEPS


def test_static_step_continues_into_the_full_forward(single_rank):
    """The state the static step leaves behind is the true one: a full forward over prompt + generated tokens
    gives the logits of its last step."""
    model = randomized_model(["metala", "metala", "metala"])
    prompt = torch.tensor([[4, 19, 22, 7, 30]])
    with torch.no_grad():
        cache = model.new_cache()
        logits = model((prompt, gpt.no_padding_mask()), cache=cache)[-1]
        step, ids = StaticDecodeStep(model, cache, capture=False), []
        for _ in range(12):
            ids.append(logits.argmax(-1))
            logits = step(ids[-1])
        full = model((torch.cat([prompt, torch.stack(ids, 1)], 1), gpt.no_padding_mask()))[-1]
    assert (logits - full).abs().max().item() <= 1e-5


def test_generate_tokens_stops_at_eos_as_the_token_by_token_loop(single_rank):
    """Rows end at their first EOS (included), whatever the batch's other rows do, checked every few tokens."""
    from neox_metala.generate import generate_tokens

    model = randomized_model(["metala", "metala"])
    free = generate_tokens(model, PROMPTS, 40, pad_id=0)
    eos = free[1][5]  # an id that row 1 reaches at its 6th token
    ended = generate_tokens(model, PROMPTS, 40, pad_id=0, eos_id=eos)
    for row, ids in zip(free, ended):
        cut = row.index(eos) + 1 if eos in row else len(row)
        assert ids == row[:cut]
    assert generate_tokens(model, PROMPTS, 1, pad_id=0) == [row[:1] for row in free]


def test_only_metala_models_get_a_static_step(single_rank):
    hybrid = randomized_model(["metala", "attention"])
    _, cache = prefill(hybrid, PROMPTS)
    assert "attention" in graph_blocker(hybrid, cache)
    with pytest.raises(ValueError, match="KV cache"):
        StaticDecodeStep(hybrid, cache, capture=False)
    metala = randomized_model(["metala", "metala"])
    assert "prefill" in graph_blocker(metala, metala.new_cache())
    _, cache = prefill(metala, PROMPTS)
    assert graph_blocker(metala, cache) is None
    assert isinstance(decode_step(metala, cache, cuda_graphs=True), EagerDecodeStep)  # on CPU, graphs or not
