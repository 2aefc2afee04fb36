"""The language model as a list of DeepSpeed LayerSpecs, run by the pipeline engine or as a plain module.

    EmbeddingPipe (vocab-parallel) -> ParallelBlockPipe x L -> FinalNormPipe -> head (tied or vocab-parallel)
    loss: vocab-parallel cross-entropy with a loss mask (model/loss.py); while training, the head hands the loss
          (hidden, weight) instead of logits (`use_fused_loss`), so that the logits are formed chunk by chunk

Between stages flows `(hidden [seq, batch, hidden], mask)`, GPT-NeoX's pipe interface; `mask` is a bool
(batch, seq) padding mask or a one-element placeholder for packed pretraining data (nothing padded). With
`reset_attention_mask`, a third element follows: `document_starts`, a bool (batch, seq) tensor, True where a
packed document begins (data/datasets.py), computed once per micro batch and read by every block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from deepspeed.pipe import LayerSpec, PipelineModule, TiedLayerSpec
from megatron.core import tensor_parallel
from torch import nn

from .. import parallel
from ..layers import init
from ..layers.block import ParallelBlockPipe
from ..layers.cache import LayerCache, new_cache
from ..layers.norms import build_norm
from ..layers.settings import BlockSettings
from .loss import cross_entropy_loss

TIED_KEY = "embed"
TIED_WEIGHT = "word_embeddings.weight"


def no_padding_mask(device=None) -> torch.Tensor:
    return torch.ones(1, dtype=torch.bool, device=device)


class EmbeddingPipe(nn.Module):
    """Vocab-parallel embedding: (tokens (batch, seq), mask[, document_starts]) -> (hidden (seq, batch, hidden),
    mask[, document_starts])."""

    def __init__(self, settings: BlockSettings, padded_vocab_size: int):
        super().__init__()
        config = parallel.linear_config(settings.params_dtype)
        self.word_embeddings = tensor_parallel.VocabParallelEmbedding(
            padded_vocab_size, settings.hidden_size, init_method=init.allocate_only, config=config
        )
        std, _ = init.stds(settings)
        init.fill_(
            self.word_embeddings.weight,
            init.local_shard(
                (padded_vocab_size, settings.hidden_size),
                0,
                init.normal(std),
                settings.seed,
                "embedding",
                "word_embeddings",
            ),
        )
        init.mark_tensor_parallel(self.word_embeddings.weight, 0)
        self.dropout = nn.Dropout(settings.hidden_dropout)
        self.loss_input = False  # as a tied head: return (hidden, weight) for the loss instead of logits

    def forward(self, inputs):
        tokens, mask, *document_starts = inputs  # tokens: (batch, seq)
        hidden = self.word_embeddings(tokens).transpose(0, 1).contiguous()  # (seq, batch, hidden)
        return self.dropout(hidden), mask, *document_starts


def parallel_logits(hidden, weight):
    """hidden (replicated over TP) x this rank's vocab slice -> (seq, batch, vocab / tp).

    The copy-to-region is an identity forward and an all-reduce of d(hidden) backward.
    """
    return F.linear(tensor_parallel.copy_to_tensor_model_parallel_region(hidden), weight)


def head_output(head, hidden, weight):
    """Logits, or in training mode after `use_fused_loss` (hidden, weight), from which the loss forms them.

    The weight leaves as a view, never as the parameter itself: DeepSpeed hooks the model's outputs and, at the
    first output gradient of a backward, zeroes the bf16 gradients (BF16_Optimizer.backward_prologue). A
    parameter among the outputs has its gradient accumulated before that (autograd runs a leaf's accumulation
    first), so the head's gradient was zeroed: an untied head never trained in bf16, and under pipeline
    parallelism the tied embedding kept only its input side's gradient (found on the H200, session 10). The view's
    own hook fires before anything reaches the parameter."""
    if head.loss_input and head.training:
        return hidden, weight.view_as(weight)
    return parallel_logits(hidden, weight)


def tied_head_forward(embedding: EmbeddingPipe, hidden):
    return head_output(embedding, hidden, embedding.word_embeddings.weight)


class FinalNormPipe(nn.Module):
    """(hidden (seq, batch, hidden), mask[, document_starts]) -> normed hidden (seq, batch, hidden)."""

    def __init__(self, settings: BlockSettings):
        super().__init__()
        self.norm = build_norm(settings.norm, settings.hidden_size, settings.norm_eps)
        self._compiled_norm = None

    def compile(self, mode: str = "default") -> None:
        """The norm compiled for training, as the blocks are (ParallelBlock.compile). Eager, its fp32 casts, powers,
        means and their backward ran as ~20 small kernels per micro batch: ~3 ms of the 380M model's 350 ms step at
        T=8192 on an H200 (bench/step_profile.py, session 17). Generation and evaluation (eval mode, other shapes)
        stay eager: no recompiles."""
        # a compiled bound method, not a compiled module: an OptimizedModule attribute would join the state dict
        self._compiled_norm = torch.compile(self._norm, dynamic=False, mode=mode)

    def _norm(self, hidden):
        return self.norm(hidden)

    def forward(self, args):
        norm = self._compiled_norm if self._compiled_norm is not None and self.training else self._norm
        return norm(args[0])


class ParallelHead(nn.Module):
    """Untied output layer (`no_weight_tying: true`): hidden (seq, batch, hidden) -> logits (seq, batch, vocab / tp)."""

    def __init__(self, settings: BlockSettings, padded_vocab_size: int):
        super().__init__()
        config = parallel.linear_config(settings.params_dtype)
        self.proj = parallel.ColumnParallelLinear(
            settings.hidden_size,
            padded_vocab_size,
            config=config,
            init_method=init.allocate_only,
            bias=False,
            gather_output=False,
        )
        std, _ = init.stds(settings)
        init.fill_(
            self.proj.weight,
            init.local_shard(
                (padded_vocab_size, settings.hidden_size), 0, init.normal(std), settings.seed, "head", "final_linear"
            ),
        )
        init.mark_tensor_parallel(self.proj.weight, 0)
        self.loss_input = False

    def forward(self, hidden):
        return head_output(self, hidden, self.proj.weight)


def use_fused_loss(model: nn.Module) -> None:
    """In training mode the heads of `model` return (hidden, weight) and `cross_entropy_loss` forms the logits
    chunk by chunk (model/loss.py); in eval mode (generation, evaluation) they return logits. Not for fp16,
    whose loss scaling must reach the logits' gradient before it is cast to half precision."""
    for module in model.modules():
        if isinstance(module, (EmbeddingPipe, ParallelHead)):
            module.loss_input = True


def layer_specs(settings: BlockSettings, layer_types: list[str], padded_vocab_size: int, tied: bool):
    if len(layer_types) != settings.num_layers:
        raise ValueError(
            f"attention_config expands to {len(layer_types)} layers but num_layers is {settings.num_layers}"
        )
    if tied:
        specs = [TiedLayerSpec(TIED_KEY, EmbeddingPipe, settings, padded_vocab_size, tied_weight_attr=TIED_WEIGHT)]
    else:
        specs = [LayerSpec(EmbeddingPipe, settings, padded_vocab_size)]
    specs += [
        LayerSpec(ParallelBlockPipe, settings, number, layer_type) for number, layer_type in enumerate(layer_types)
    ]
    specs.append(LayerSpec(FinalNormPipe, settings))
    if tied:
        specs.append(
            TiedLayerSpec(
                TIED_KEY,
                EmbeddingPipe,
                settings,
                padded_vocab_size,
                forward_fn=tied_head_forward,
                tied_weight_attr=TIED_WEIGHT,
            )
        )
    else:
        specs.append(LayerSpec(ParallelHead, settings, padded_vocab_size))
    return specs


def build_pipeline_model(specs, layout: parallel.ParallelLayout) -> PipelineModule:
    """DeepSpeed pipeline engine model; blocks are split evenly over the stages.

    Activation checkpointing is done inside each block (torch.utils.checkpoint), the same for both engines.
    """
    return PipelineModule(
        layers=specs,
        loss_fn=cross_entropy_loss,
        topology=parallel.pipeline_topology(layout),
        partition_method="type:ParallelBlockPipe",
    )


class SequentialModel(nn.Module):
    """The same specs as one module (`pipe_parallel_size: 0`): forward((tokens, mask)) -> logits."""

    def __init__(self, specs):
        super().__init__()
        self.layers = nn.ModuleList()
        self._calls = []  # (index into self.layers, forward_fn or None)
        tied_index = {}
        for spec in specs:
            if isinstance(spec, TiedLayerSpec) and spec.key in tied_index:
                self._calls.append((tied_index[spec.key], spec.forward_fn))
                continue
            self.layers.append(spec.build())
            if isinstance(spec, TiedLayerSpec):
                tied_index[spec.key] = len(self.layers) - 1
            self._calls.append((len(self.layers) - 1, spec.forward_fn if isinstance(spec, TiedLayerSpec) else None))

    def new_cache(self) -> list[LayerCache]:
        """Empty decode state, one per block, for `forward(inputs, cache)`."""
        return new_cache(sum(isinstance(layer, ParallelBlockPipe) for layer in self.layers))

    def forward(self, inputs, cache: list[LayerCache] | None = None):
        """inputs: (tokens (batch, seq), mask[, document_starts]) -> logits (seq, batch, vocab / tp).

        `cache` (from new_cache) continues a sequence and is updated: a prefill then one-token steps give the
        logits of one full forward."""
        x = inputs
        block_caches = iter(cache) if cache is not None else None
        for index, forward_fn in self._calls:
            layer = self.layers[index]
            if block_caches is not None and isinstance(layer, ParallelBlockPipe):
                x = layer(x, cache=next(block_caches))
            else:
                x = forward_fn(layer, x) if forward_fn is not None else layer(x)
        return x
