"""One-token decode steps after a prefill: through the model eagerly, or replayed from a CUDA graph.

Eager decoding is host-bound on a GPU: Python in megatron-core's linears and fla's wrappers and ~40 kernel launches
per block cost ~40 ms per token for a 24-layer 1B model on an H200, at batch 1 as at batch 64, for well under 2 ms of
GPU work. A model whose blocks are all MetaLA keeps a decode state of fixed shape (layers/cache.py: conv history
and recurrent state), so one step, token ids (batch, 1) -> logits (batch, vocab), is captured once with
`torch.cuda.graph` and replayed per token. The captured step reads static state buffers and copies the mixers'
new states back into them (mixers return new tensors rather than mutate, cache.py), so each replay continues
where the last stopped. An attention layer's KV cache grows by a token per step, so models with attention
layers decode eagerly.

    step = decode_step(model, cache, cuda_graphs=True)   # after logits = model((prompt, mask), cache=cache)
    logits = step(tokens)              # tokens (batch,) -> logits (batch, vocab), valid until the next call

`StaticDecodeStep(model, cache, capture=False)` runs the same in-place step without a graph, on any device: the
CPU tests compare it with the plain cached decode.
"""

from __future__ import annotations

import logging

import torch

from .. import parallel
from ..layers.block import ParallelBlockPipe
from ..layers.cache import LayerCache
from ..layers.mixer import MetaLAMixer
from .gpt import SequentialModel, no_padding_mask

WARMUP_STEPS = 3  # PyTorch's CUDA graph docs warm up 3 iterations; fla's Triton autotuning happens in the first
_logger = logging.getLogger(__name__)
_logged_reasons: set = set()


def graph_blocker(model: SequentialModel, cache: list[LayerCache]) -> str | None:
    """Why the decode step of `model` (on a GPU) cannot be a CUDA graph, or None if it can."""
    blocks = [layer for layer in model.layers if isinstance(layer, ParallelBlockPipe)]
    if not all(isinstance(block.mixer, MetaLAMixer) for block in blocks):
        return "attention layers keep a KV cache that grows by a token per step"
    if parallel.tensor_parallel_size() > 1:
        return "tensor parallelism all-reduces between ranks"
    if model.training:
        return "the model is in training mode (dropout)"
    if not cache or any(c.recurrent_state is None for c in cache):
        return "no prefill has filled the cache"
    return None


class EagerDecodeStep:
    """The model's cached forward on one token per row; the cache is replaced step by step, as the mixers do."""

    graphed = False

    def __init__(self, model: SequentialModel, cache: list[LayerCache]):
        self.model, self.cache = model, cache
        self.mask = no_padding_mask(next(model.parameters()).device)

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model((tokens.view(-1, 1), self.mask), cache=self.cache)[-1]  # (batch, vocab)


class StaticDecodeStep:
    """A MetaLA-only model's one-token step on fixed buffers: input ids, every block's conv and recurrent state
    (the caller's prefilled `cache`, adopted: it stays the live decode state), and the logits; captured as a CUDA
    graph unless `capture=False`, which runs the same in-place step eagerly (any device)."""

    def __init__(self, model: SequentialModel, cache: list[LayerCache], capture: bool = True):
        blocker = graph_blocker(model, cache)
        if blocker is not None:
            raise ValueError(f"no static decode step for this model: {blocker}")
        self.model, self.cache = model, cache
        device = cache[0].recurrent_state.device
        self.tokens = torch.zeros(cache[0].recurrent_state.shape[0], 1, dtype=torch.long, device=device)
        self.mask = no_padding_mask(device)
        for layer_cache in cache:  # the kernels index the states as dense (batch, ...) arrays
            layer_cache.recurrent_state = layer_cache.recurrent_state.contiguous()
            if layer_cache.conv_state is not None:
                layer_cache.conv_state = layer_cache.conv_state.contiguous()
        self.buffers = [(c.conv_state, c.recurrent_state) for c in cache]
        self.graph, self.logits = None, None
        if capture:
            self._capture()

    @property
    def graphed(self) -> bool:
        return self.graph is not None

    def _step(self, buffers) -> torch.Tensor:
        """Forward one token from `buffers` and write the new states back into them: what the graph records."""
        self._bind(buffers)
        logits = self.model((self.tokens, self.mask), cache=self.cache)[-1]  # (batch, vocab)
        for layer_cache, (conv_state, recurrent_state) in zip(self.cache, buffers):
            _copy_state(conv_state, layer_cache.conv_state, "conv_state")
            _copy_state(recurrent_state, layer_cache.recurrent_state, "recurrent_state")
        self._bind(buffers)
        return logits

    def _bind(self, buffers) -> None:
        for layer_cache, (conv_state, recurrent_state) in zip(self.cache, buffers):
            layer_cache.conv_state, layer_cache.recurrent_state = conv_state, recurrent_state

    @torch.no_grad()
    def _capture(self) -> None:
        seen = [c.seen for c in self.cache]
        # Warm-up outside the capture, on copies of the state (it advances them): Triton autotuning (fla's kernels
        # benchmark their configs, with host syncs), lazy cuBLAS / module initialisation. A side stream, as
        # PyTorch's CUDA graph docs do, keeps the warm-up's allocations apart from the default stream's.
        scratch = [(None if conv is None else conv.clone(), state.clone()) for conv, state in self.buffers]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._step(scratch)
        torch.cuda.current_stream().wait_stream(side)
        self._bind(self.buffers)  # the copies are freed here, not while capturing
        del scratch
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._step(self.buffers)  # recorded, not run: the state is still the prefill's
        for layer_cache, count in zip(self.cache, seen):
            layer_cache.seen = count

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (batch,) or (batch, 1) ids -> logits (batch, vocab); a static buffer under a graph, overwritten
        by the next call."""
        self.tokens.copy_(tokens.view(-1, 1))
        if self.graph is None:
            return self._step(self.buffers)
        self.graph.replay()
        for layer_cache in self.cache:  # what the model's Python side did while the graph was recorded
            layer_cache.seen += 1
        return self.logits


def _copy_state(buffer, new, name: str) -> None:
    """buffer <- new, in place. Same shape and dtype, or the graph would silently round what eager carries."""
    if buffer is None:
        return
    if new.shape != buffer.shape or new.dtype != buffer.dtype:
        raise RuntimeError(
            f"decode step changed {name} from {buffer.dtype} {tuple(buffer.shape)} to {new.dtype} {tuple(new.shape)}; "
            "a static buffer cannot follow it (decode eagerly: cuda_graphs=False)"
        )
    buffer.copy_(new)


def decode_step(model: SequentialModel, cache: list[LayerCache], cuda_graphs: bool):
    """The one-token step after the prefill that filled `cache`: on a GPU, a replayed CUDA graph where the model
    allows one (`graph_blocker`, whose reason is logged once) and `cuda_graphs` asks for it, else the eager model
    call. No default here: whether graphs are on is the caller's (generate_tokens: opt-in for now)."""
    if not cuda_graphs or next(model.parameters()).device.type != "cuda":
        return EagerDecodeStep(model, cache)
    blocker = graph_blocker(model, cache)
    if blocker is None:
        return StaticDecodeStep(model, cache)
    if blocker not in _logged_reasons:
        _logged_reasons.add(blocker)
        _logger.info("decoding eagerly, without a CUDA graph: %s", blocker)
    return EagerDecodeStep(model, cache)
