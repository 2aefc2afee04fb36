"""Decode state: a prefill and then one-token steps (or further chunks of any length) give the logits of one full
forward pass, for MetaLA, attention and hybrid stacks, with and without left padding (fp32, CPU)."""

import pytest
import torch

from neox_metala.layers.settings import BlockSettings
from neox_metala.model import gpt
from neox_metala.ops.options import MetaLAOptions

VOCAB, TOLERANCE = 64, 1e-5
STACKS = {
    "metala": ["metala", "metala"],
    "attention": ["attention", "attention"],
    "hybrid": ["metala", "attention", "metala"],
}


def randomized_model(layer_types, seed=3):
    settings = BlockSettings(
        hidden_size=32,
        num_attention_heads=4,
        num_layers=len(layer_types),
        norm="rmsnorm",
        metala=MetaLAOptions(chunk_size=4),
        seed=seed,
    )
    model = gpt.SequentialModel(gpt.layer_specs(settings, layer_types, VOCAB, tied=True)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # everything random, the parts that start at zero or one included
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 2 else 0.5))
    return model


def logits_of(model, tokens, mask=None, cache=None):
    """(batch, seq, vocab) logits of `tokens` (batch, seq)."""
    with torch.no_grad():
        inputs = (tokens, gpt.no_padding_mask() if mask is None else mask)
        return model(inputs, cache=cache).transpose(0, 1)


def rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


def decode_in_chunks(model, tokens, chunk_lengths):
    cache, pieces, start = model.new_cache(), [], 0
    for length in chunk_lengths:
        pieces.append(logits_of(model, tokens[:, start : start + length], cache=cache))
        start += length
    return torch.cat(pieces, dim=1), cache


@pytest.fixture(scope="module")
def models(single_rank):
    return {name: randomized_model(types) for name, types in STACKS.items()}


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("prefill", range(1, 10))
def test_prefill_then_one_token_steps_equal_the_full_forward(models, stack, prefill):
    model = models[stack]
    tokens = torch.randint(0, VOCAB, (2, prefill + 6), generator=torch.Generator().manual_seed(prefill))
    full = logits_of(model, tokens)
    stepped, cache = decode_in_chunks(model, tokens, [prefill] + [1] * 6)
    assert rel_err(stepped, full) <= TOLERANCE
    assert all(c.seen == tokens.shape[1] for c in cache)


@pytest.mark.parametrize("stack", list(STACKS))
def test_chunked_prefill_after_a_cache_equals_the_full_forward(models, stack):
    """Chunks of several tokens after a cache continue the conv history (the official model restarts it)."""
    model = models[stack]
    tokens = torch.randint(0, VOCAB, (2, 19), generator=torch.Generator().manual_seed(5))
    full = logits_of(model, tokens)
    chunked, _ = decode_in_chunks(model, tokens, [3, 5, 2, 1, 7, 1])
    assert rel_err(chunked, full) <= TOLERANCE


def test_restarting_the_conv_history_is_caught(models):
    """The official model's bug (spec §7 (1)): a chunk after a cache restarts the short convolution from zeros.
    Reproduced here on purpose, it is far off, so the comparisons above can fail."""
    model = models["metala"]
    tokens = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(6))
    full = logits_of(model, tokens)
    cache = model.new_cache()
    first = logits_of(model, tokens[:, :5], cache=cache)
    for layer_cache in cache:
        layer_cache.conv_state = None
    second = logits_of(model, tokens[:, 5:], cache=cache)
    assert rel_err(torch.cat([first, second], dim=1), full) > 1e-2


@pytest.mark.parametrize("stack", list(STACKS))
def test_left_padded_batch_decodes_each_row_as_if_alone(models, stack):
    model = models[stack]
    gen = torch.Generator().manual_seed(7)
    lengths, total, steps = [7, 4], 7, 4
    rows = [torch.randint(0, VOCAB, (1, n + steps), generator=gen) for n in lengths]
    prompts = torch.stack(
        [torch.cat([torch.zeros(total - n, dtype=torch.long), r[0, :n]]) for r, n in zip(rows, lengths)]
    )
    mask = torch.arange(total)[None, :] >= torch.tensor([total - n for n in lengths])[:, None]  # (batch, seq)
    cache = model.new_cache()
    batch_logits = [logits_of(model, prompts, mask, cache)[:, -1]]
    for step in range(steps):
        next_tokens = torch.stack([r[0, n + step] for r, n in zip(rows, lengths)])[:, None]
        batch_logits.append(logits_of(model, next_tokens, cache=cache)[:, -1])
    for index, (row, n) in enumerate(zip(rows, lengths)):
        alone = logits_of(model, row)[0, n - 1 :]  # the prompt's last position, then each step
        assert rel_err(torch.stack([b[index] for b in batch_logits]), alone) <= TOLERANCE


def test_cache_select_and_fork_branch_a_context(models):
    """select() repeats a context for several continuations (as evaluation does); fork() keeps a copy unchanged."""
    model = models["hybrid"]
    tokens = torch.randint(0, VOCAB, (1, 9), generator=torch.Generator().manual_seed(8))
    cache = model.new_cache()
    logits_of(model, tokens[:, :6], cache=cache)
    kept = [c.fork() for c in cache]
    repeated = [c.select(torch.zeros(3, dtype=torch.long)) for c in cache]
    continuation = logits_of(model, tokens[:, 6:].expand(3, -1), cache=repeated)
    full = logits_of(model, tokens)[:, 6:]
    assert rel_err(continuation, full.expand(3, -1, -1)) <= TOLERANCE
    assert all(c.seen == 6 for c in kept) and all(c.seen == 9 for c in repeated)
