"""Real checkpoints for the export tests: the trainer's own engine builder and `training.checkpoint.save`, in real
gloo processes, with random weights that are the same full tensors whatever the TP / PP layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from neox_metala.training.checkpoint_files import canonical_name  # noqa: F401  (re-exported for tests)

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = str(REPO / "data/sample/tokenizer.json")  # 8192 tokens: no vocab padding at TP 1 and 2
VOCAB = 8192
SEQ = 11
STACKS = {
    "metala": ["metala", "metala"],
    "attention": ["attention", "attention"],
    "hybrid": ["metala", "attention", "metala"],
}


def flat_config(layer_types, save_dir, tp=1, pp=0, **overrides) -> dict:
    return {
        "num_layers": len(layer_types),
        "hidden_size": 32,
        "num_attention_heads": 4,
        "seq_length": 16,
        "intermediate_size": 96,
        "attention_config": [[[t], 1] for t in layer_types],
        "norm": "rmsnorm",
        "metala_chunk_size": 4,
        "model_parallel_size": tp,
        "pipe_parallel_size": pp,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
        "zero_optimization": {"stage": 1},
        "precision": "fp32",
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": 1,
        "train_iters": 10,
        "tokenizer_type": "HFTokenizer",
        "vocab_file": TOKENIZER,
        "save": str(save_dir),
        "seed": 11,
        **overrides,
    }


def randomize_(model) -> None:
    """Add seeded noise to every parameter: drawn in full per name, then sliced to this rank's TP shard."""
    from neox_metala import parallel
    from neox_metala.model.reshard import split_tp_shard, tp_layout

    tp, rank = parallel.tensor_parallel_size(), parallel.tensor_parallel_rank()
    with torch.no_grad():
        for name, param in model.named_parameters():
            partition_dim, fused = tp_layout(param)
            full_shape = list(param.shape)
            if partition_dim is not None:
                full_shape[partition_dim] *= tp
            seed = int.from_bytes(hashlib.sha256(canonical_name(name).encode()).digest()[:6], "little")
            noise = torch.randn(full_shape, generator=torch.Generator().manual_seed(seed))
            param.add_(split_tp_shard(noise, tp, rank, partition_dim, fused) * (0.3 if param.dim() == 2 else 0.5))


def probe_tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, SEQ), generator=torch.Generator().manual_seed(99))


def save_worker(rank, world_size, runs):
    """For each (flat config, iteration): build, randomize, save. Returns the full logits of the probe batch for
    single-rank plain models (the reference the exports must reproduce)."""
    from neox_metala import parallel
    from neox_metala.config import NeoXArgs, padded_vocab_size
    from neox_metala.model import gpt
    from neox_metala.training import checkpoint
    from neox_metala.training.engine import build_model, initialize_engine

    results = []
    for values, iteration in runs:
        args = NeoXArgs.from_flat(values, {}).resolve(world_size)
        layout = parallel.initialize(args.parallel.model_parallel_size, args.parallel.pipeline_stages)
        vocab = padded_vocab_size(VOCAB, args.model.make_vocab_size_divisible_by, args.parallel.model_parallel_size)
        model = build_model(args, layout, vocab)
        randomize_(model)
        logits = None
        if not args.parallel.is_pipe_parallel and world_size == 1:
            with torch.no_grad():
                logits = model.eval()((probe_tokens(), gpt.no_padding_mask())).transpose(0, 1).clone()
            model.train()
        engine = initialize_engine(args, model)
        checkpoint.save(engine, values["save"], iteration, {"train_state": {"iteration": iteration}}, args.to_yaml())
        results.append(logits)
    return results
