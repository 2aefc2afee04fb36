"""A small randomized MetaLA / hybrid model and a left-padded prefill, for the decode-step tests (CPU and GPU)."""

import torch

from neox_metala.layers.settings import BlockSettings
from neox_metala.model import gpt
from neox_metala.ops.options import MetaLAOptions

VOCAB = 64


def randomized_model(layer_types, seed=3, short_conv=True, hidden=32, vocab=VOCAB):
    """fp32 on CPU; fla's kernels (GPU, bf16) need hidden >= 128 for their 16-wide tiles."""
    settings = BlockSettings(
        hidden_size=hidden,
        num_attention_heads=4,
        num_layers=len(layer_types),
        norm="rmsnorm",
        metala=MetaLAOptions(chunk_size=4, short_conv=short_conv),
        seed=seed,
    )
    model = gpt.SequentialModel(gpt.layer_specs(settings, layer_types, vocab, tied=True)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # everything random, so that no state channel stays zero
        for p in model.parameters():
            # drawn on the CPU (one stream of numbers on every device), then moved: megatron-core builds on the GPU
            p.add_(torch.randn(p.shape, generator=gen).to(p.device) * (0.3 if p.dim() == 2 else 0.5))
    return model


def prefill(model, prompts):
    """(logits (batch, vocab) at the last prompt position, cache) after a left-padded prefill."""
    from neox_metala.generate import left_padded_batch

    tokens, mask = left_padded_batch(prompts, pad_id=0, device=next(model.parameters()).device)
    cache = model.new_cache()
    with torch.no_grad():
        logits = model((tokens, mask), cache=cache)[-1]
    return logits, cache


PROMPTS = [[5, 9, 3, 17, 2, 11, 40], [7, 1], [33, 8, 8, 21]]  # left-padded to 7


def greedy(step, logits, steps):
    """`steps` greedy tokens from `step` and the logits they were chosen from: (steps, batch), (steps, batch, vocab)."""
    tokens, seen = [], []
    for _ in range(steps):
        seen.append(logits.clone())  # a graph's logits are a buffer that the next step overwrites
        tokens.append(logits.argmax(-1))
        logits = step(tokens[-1])
    return torch.stack(tokens), torch.stack(seen)
