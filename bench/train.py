"""Whole-model training throughput with our trainer: the 380M MetaLA against the same-size Transformer++
(attention) model, T=2048, bf16, ZeRO-1, one GPU, in one process. Synthetic random-token data.

    python bench/train.py [--iters 40] [--micro-batch 8] [--out results.json]

Tokens/s per GPU and MFU are read from the trainer's own metrics (the mean of the logged intervals after the
first, which holds compilation and warm-up).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.config import load_config  # noqa: E402
from neox_metala.training.trainer import Trainer  # noqa: E402

VOCAB = 50277  # GPT-NeoX-20B's size: the Pile runs' embedding (padded to 50304)
MODEL_380M = {"num_layers": 24, "hidden_size": 1024, "num_attention_heads": 8, "seq_length": 2048,
              "norm": "rmsnorm", "make_vocab_size_divisible_by": 128}
SMOKE_MODEL = {**MODEL_380M, "num_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "seq_length": 128}


def synthetic_data(directory: str, tokens: int, seq: int) -> tuple[str, str]:
    """Random-token documents as an indexed dataset, and a word-level tokenizer JSON of VOCAB entries."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    from tokenizers import Tokenizer, models

    prefix = os.path.join(directory, "random")
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.uint16)
    rng = np.random.default_rng(0)
    for _ in range(tokens // seq + 1):
        builder.add_document(torch.from_numpy(rng.integers(1, VOCAB, seq).astype(np.int64)), [seq])
    builder.finalize(prefix + ".idx")
    vocab = {"<|endoftext|>": 0, **{f"t{i}": i for i in range(1, VOCAB)}}
    tokenizer_file = os.path.join(directory, "tokenizer.json")
    Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>")).save(tokenizer_file)
    return prefix, tokenizer_file


def config_files(directory, kind, prefix, tokenizer_file, iters, micro_batch, shape) -> list[str]:
    layers = shape["num_layers"]
    model = {**shape, "attention_config": [[[kind], layers]], "pos_emb": "rotary" if kind == "attention" else "none"}
    if kind == "metala":
        model["metala_fused_kernels"] = True  # the measured path: ops.fused (opt-in, see docs/benchmarks.md)
    training = {"optimizer": {"type": "AdamW", "params": {"lr": 3.0e-4, "betas": [0.9, 0.95], "eps": 1.0e-8}},
                "zero_optimization": {"stage": 1}, "precision": "bfloat16", "train_iters": iters,
                "train_micro_batch_size_per_gpu": micro_batch, "gradient_accumulation_steps": 1,
                "lr_decay_style": "cosine", "warmup": 0.01, "eval_iters": 0, "log_interval": 10,
                "train_data_paths": [prefix], "valid_data_paths": [prefix], "test_data_paths": [prefix],
                "tokenizer_type": "HFTokenizer", "vocab_file": tokenizer_file, "num_workers": 2,
                "log_dir": os.path.join(directory, f"run-{kind}")}
    paths = []
    for name, settings in (("model", model), ("training", training)):
        path = os.path.join(directory, f"{kind}-{name}.yml")
        with open(path, "w") as f:
            yaml.safe_dump(settings, f)
        paths.append(path)
    return paths


def measure(kind, directory, prefix, tokenizer_file, iters, micro_batch, shape) -> dict:
    args = load_config(config_files(directory, kind, prefix, tokenizer_file, iters, micro_batch, shape)).resolve(1)
    trainer = Trainer(args)
    trainer.train()
    rows = [json.loads(line) for line in open(os.path.join(directory, f"run-{kind}", "metrics.jsonl"))]
    steady = [r for r in rows if "tokens_per_second" in r][1:]  # the first interval holds compile + warm-up
    result = {"tokens_per_s": float(np.mean([r["tokens_per_second"] for r in steady])),
              "tflops_per_gpu": float(np.mean([r.get("tflops_per_gpu", float("nan")) for r in steady])),
              "mfu_percent": float(np.mean([r.get("mfu_percent", float("nan")) for r in steady])),
              # the trainer's own per-interval peaks (it resets the counters at every log)
              "peak_memory_gib": max((r.get("memory_max_allocated_gib", 0.0) for r in rows), default=0.0),
              "final_loss": steady[-1].get("loss")}
    del trainer
    gc.collect()
    torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--kinds", nargs="+", default=["metala", "attention"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="a 2-layer model at T=128: checks the script on CPU")
    options = parser.parse_args()
    shape = SMOKE_MODEL if options.smoke else MODEL_380M
    seq = shape["seq_length"]
    os.environ.setdefault("WANDB_MODE", "disabled")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results = {"device": device, "torch": torch.__version__, "shape": shape}
    with tempfile.TemporaryDirectory() as directory:
        prefix, tokenizer_file = synthetic_data(directory, (options.iters + 2) * options.micro_batch * seq * 2, seq)
        for kind in options.kinds:
            results[kind] = measure(kind, directory, prefix, tokenizer_file, options.iters, options.micro_batch,
                                    shape)
            print(f"{kind:<10} {results[kind]['tokens_per_s'] / 1e3:8.1f} k tok/s/GPU  "
                  f"{results[kind]['tflops_per_gpu']:6.1f} TFLOP/s  MFU {results[kind]['mfu_percent']:5.1f}%  "
                  f"peak {results[kind]['peak_memory_gib']:.1f} GiB", flush=True)
    if "metala" in results and "attention" in results:
        ratio = results["metala"]["tokens_per_s"] / results["attention"]["tokens_per_s"]
        results["metala_over_attention_tokens_per_s"] = ratio
        print(f"MetaLA / attention tokens/s: {ratio:.3f}")
    if options.out:
        with open(options.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
