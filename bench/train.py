"""Whole-model training speed against the plain baseline, in one run on one GPU.

For each sequence length (same tokens per micro batch), measures in this call, each run in a process of its own:
  baseline      ../shared/bench/plain_transformer.py (a plain compiled PyTorch Transformer++)
  attention     our trainer, the same shape with attention layers
  metala        our trainer, configs/metala-380M.yml's own settings
and prints tokens/s per GPU, model TFLOP/s, MFU, peak memory and the ratios to the baseline. Our runs use the
shipped config (its engine, precision, optimizer, kernels), with 24 layers to match the baseline's shape (the
config has 26), synthetic random-token data and `--accumulation` micro batches per step.

    python bench/train.py [--seqs 2048 8192] [--kinds baseline attention metala] [--iters 12] [--out r.json]

Tokens/s per GPU and MFU are read from the trainer's own metrics (the mean of the logged intervals after the
first, which holds compilation and warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from set_argument import add_set_argument  # noqa: E402

from neox_metala.config import load_config  # noqa: E402
from neox_metala.training.trainer import Trainer  # noqa: E402

VOCAB = 50277  # GPT-NeoX-20B's size: the Pile runs' embedding (padded to 50304)
SHIPPED_CONFIG = os.path.join(ROOT, "configs", "metala-380M.yml")
BASELINE = os.path.join(ROOT, "..", "shared", "bench", "plain_transformer.py")
TOKENS_PER_MICRO_BATCH = 8 * 2048
# MetaLA variants by kind name: the shipped config with these keys changed
VARIANTS = {
    "metala-fused": {"metala_fused_kernels": True},
    "metala-fla": {"metala_core_kernel": "fla"},  # the core before MetaLA's own kernels became the default
    "metala-shifted": {"metala_conv_kernel": "shifted"},  # the short conv before its own kernels became the default
    "metala-recompute": {"metala_keep_core_states": False},  # the own core's states recomputed in backward
    "metala-nographs": {"torch_compile_mode": "default"},  # no CUDA graphs (the default is reduce-overhead)
    "metala-compiled-epilogue": {"metala_epilogue_kernel": "compiled"},  # the epilogue fused by torch.compile
    "metala-budget08": {"torch_compile_memory_budget": 0.8},  # recompute inside compiled blocks (before: default)
}
# MetaLA variants by kind name: the shipped config run with these environment variables set
ENV_VARIANTS = {
    "metala-indirect": {"NEOX_METALA_DIRECT_LAUNCH": "0"},  # our kernels through Triton's own launch path
    "metala-cpp": {"TORCHINDUCTOR_CPP_WRAPPER": "1"},  # the compiled blocks' wrappers in C++ instead of Python
}


def variant(kind: str) -> tuple[dict, dict]:
    """(config keys, environment) of a kind; "metala-a+b" combines the variants metala-a and metala-b."""
    settings, env = {}, {}
    if kind.startswith("metala-"):
        for part in kind[len("metala-") :].split("+"):
            name = "metala-" + part
            if name not in VARIANTS and name not in ENV_VARIANTS:
                raise SystemExit(f"unknown kind {kind!r}: {name} is none of " + ", ".join([*VARIANTS, *ENV_VARIANTS]))
            settings.update(VARIANTS.get(name, {}))
            env.update(ENV_VARIANTS.get(name, {}))
    return settings, env


SMOKE = {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 256}


def synthetic_data(directory: str, tokens: int, seq: int) -> tuple[str, str]:
    """Random-token documents as an indexed dataset, and a word-level tokenizer JSON of VOCAB entries."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    from tokenizers import Tokenizer, models

    prefix = os.path.join(directory, f"random-{seq}")
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.uint16)
    rng = np.random.default_rng(0)
    for _ in range(tokens // seq + 1):
        builder.add_document(torch.from_numpy(rng.integers(1, VOCAB, seq).astype(np.int64)), [seq])
    builder.finalize(prefix + ".idx")
    tokenizer_file = os.path.join(directory, "tokenizer.json")
    if not os.path.exists(tokenizer_file):
        vocab = {"<|endoftext|>": 0, **{f"t{i}": i for i in range(1, VOCAB)}}
        Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>")).save(tokenizer_file)
    return prefix, tokenizer_file


def config_file(directory, kind, seq, data, options) -> str:
    """The shipped 380M config with the benchmark's shape, length, batch and data; one file (keys may not repeat
    across config files)."""
    with open(SHIPPED_CONFIG) as f:
        settings = yaml.safe_load(f)
    micro_batch = max(1, TOKENS_PER_MICRO_BATCH // seq) if not options.smoke else 2
    layers = SMOKE["num_layers"] if options.smoke else options.layers
    settings.update(SMOKE if options.smoke else {"num_layers": layers})
    mixer = "metala" if kind.startswith("metala") else "attention"
    settings.update(
        {
            "attention_config": [[[mixer], layers]],
            "pos_emb": "rotary" if mixer == "attention" else "none",
            "seq_length": seq,
            "train_micro_batch_size_per_gpu": micro_batch,
            "train_batch_size": micro_batch * options.accumulation,
            "train_iters": options.iters,
            "warmup": 0.01,
            "eval_iters": 0,
            "log_interval": options.log_interval,
            "checkpoint_factor": None,
            "train_data_paths": [data[0]],
            "valid_data_paths": [data[0]],
            "test_data_paths": [data[0]],
            "tokenizer_type": "HFTokenizer",
            "vocab_file": data[1],
            "num_workers": 2,
            "log_dir": os.path.join(directory, f"run-{kind}-{seq}"),
            "use_wandb": False,
        }
    )
    settings.update(variant(kind)[0])
    settings.update(options.set)
    path = os.path.join(directory, f"{kind}-{seq}.yml")
    with open(path, "w") as f:
        yaml.safe_dump(settings, f)
    return path


def measure_ours(kind, seq, options) -> dict:
    """One run in a process of its own, as a job starts: after an earlier run in the same process, dynamo recompiled
    the blocks with dynamic shapes even after torch._dynamo.reset() (T=8192 after T=2048: 24.1 GiB instead of 18.7,
    slower), and the allocator keeps the earlier run's cached blocks."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "run.json")
        command = [sys.executable, os.path.abspath(__file__), *options.argv, "--one-run", kind, str(seq), out]
        done = subprocess.run(command, env={**os.environ, **variant(kind)[1]})
        if done.returncode:  # one variant failing (a new kernel, say) must not cost the call the others' numbers
            return {"error": f"exit code {done.returncode}", "tokens_per_s": float("nan")}
        with open(out) as f:
            return json.load(f)


def run_here(kind, seq, directory, data, options) -> dict:
    args = load_config([config_file(directory, kind, seq, data, options)]).resolve(1)
    trainer = Trainer(args)
    try:
        trainer.train()
    finally:
        trainer.train_stream.close()
    rows = [json.loads(line) for line in open(os.path.join(args.logging.log_dir, "metrics.jsonl"))]
    steady = [r for r in rows if "tokens_per_second" in r][1:]  # the first interval holds compile + warm-up
    result = {
        "tokens_per_s": float(np.mean([r["tokens_per_second"] for r in steady])),
        # host-bound steps vary from interval to interval (~119k-137k within one MetaLA run on an H200): a ratio
        # inside this range is not a measured difference
        "tokens_per_s_range": [float(f([r["tokens_per_second"] for r in steady])) for f in (np.min, np.max)],
        "model_tflops": float(np.mean([r.get("tflops_per_gpu", float("nan")) for r in steady])),
        "mfu_percent": float(np.mean([r.get("mfu_percent", float("nan")) for r in steady])),
        # the trainer's own per-interval peaks (it resets the counters at every log)
        "peak_memory_gib": max((r.get("memory_max_allocated_gib", 0.0) for r in rows), default=0.0),
        "final_loss": steady[-1].get("loss"),
    }
    return result


def measure_baseline(seq, options) -> dict:
    micro_batch = TOKENS_PER_MICRO_BATCH // seq
    command = [
        sys.executable,
        options.baseline,
        "--seq",
        str(seq),
        "--micro-batch",
        str(micro_batch),
        "--layers",
        str(options.layers),
        "--iters",
        str(options.baseline_iters),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["mfu_percent"] = 100 * result["model_tflops"] / options.peak_tflops
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", nargs="+", type=int, default=[2048, 8192])
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["baseline", "attention", "metala"],
        help="baseline, attention, metala, or a MetaLA variant ('+' combines them, e.g. metala-nographs+indirect): "
        + ", ".join([*VARIANTS, *ENV_VARIANTS]),
    )
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--iters", type=int, default=12)
    parser.add_argument(
        "--accumulation",
        type=int,
        default=4,
        help="micro batches per step (the config's gradient accumulation on 8 GPUs)",
    )
    parser.add_argument("--log-interval", type=int, default=2)
    add_set_argument(parser)
    parser.add_argument("--baseline", default=BASELINE, help="path of plain_transformer.py")
    parser.add_argument("--baseline-iters", type=int, default=30)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="a 2-layer model at T=128: checks the script on CPU")
    parser.add_argument("--one-run", nargs=3, metavar=("KIND", "SEQ", "OUT"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    options.argv = sys.argv[1:]
    if options.one_run:  # measure_ours' child process
        kind, seq, out = options.one_run[0], int(options.one_run[1]), options.one_run[2]
        with tempfile.TemporaryDirectory() as directory:
            tokens = (options.iters + 2) * TOKENS_PER_MICRO_BATCH * options.accumulation
            result = run_here(kind, seq, directory, synthetic_data(directory, tokens, seq), options)
        with open(out, "w") as f:
            json.dump(result, f)
        return
    for kind in options.kinds:  # a misspelt kind fails here, not after the GPU time of the kinds before it
        variant(kind)
    if options.smoke:
        options.seqs, options.kinds = [128], [k for k in options.kinds if k != "baseline"]
    os.environ.setdefault("WANDB_MODE", "disabled")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results = {
        "device": device,
        "torch": torch.__version__,
        "layers": options.layers,
        "accumulation": options.accumulation,
        "tokens_per_micro_batch": TOKENS_PER_MICRO_BATCH,
    }
    for seq in options.seqs:
        row = results.setdefault(str(seq), {})
        for kind in options.kinds:
            row[kind] = measure_baseline(seq, options) if kind == "baseline" else measure_ours(kind, seq, options)
            r = row[kind]
            if "error" in r:
                print(f"T={seq:<5} {kind:<13} FAILED ({r['error']}; its output is above)", flush=True)
                continue
            ratio = r["tokens_per_s"] / row["baseline"]["tokens_per_s"] if "baseline" in row else float("nan")
            r["vs_baseline"] = ratio
            low, high = r.get("tokens_per_s_range", (None, None))
            spread = f"  (intervals {low / 1e3:.1f}-{high / 1e3:.1f} k)" if low else ""
            print(
                f"T={seq:<5} {kind:<13} {r['tokens_per_s'] / 1e3:8.1f} k tok/s/GPU  "
                f"{r['model_tflops']:6.1f} TFLOP/s  MFU {r['mfu_percent']:5.1f}%  "
                f"peak {r['peak_memory_gib']:5.1f} GiB  ratio vs baseline {ratio:.3f}{spread}",
                flush=True,
            )
    if options.out:
        with open(options.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
