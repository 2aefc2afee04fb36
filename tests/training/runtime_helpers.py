"""Small real training runs for the runtime tests: YAML files on disk, the bundled sample corpus, real engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

SMALL_MODEL = {
    "num_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "seq_length": 32,
    "attention_config": [[["metala"], 2]],
    "norm": "rmsnorm",
    "metala_chunk_size": 16,
    "optimizer": {"type": "AdamW", "params": {"lr": 0.003, "betas": [0.9, 0.95], "eps": 1.0e-8}},
    "lr_decay_style": "cosine",
    "warmup": 0.1,
    "min_lr": 0.0003,
    "gradient_clipping": 1.0,
    "zero_optimization": {"stage": 1},
    "precision": "fp32",
    "hidden_dropout": 0.1,
    "train_micro_batch_size_per_gpu": 2,
    "gradient_accumulation_steps": 2,
    "seed": 4321,
    "eval_interval": 4,
    "eval_iters": 1,
    "log_interval": 1,
    "num_workers": 0,
}


def sample_data_settings(sample: dict) -> dict:
    return {
        "train_data_paths": sample["train_data_paths"],
        "valid_data_paths": sample["valid_data_paths"],
        "test_data_paths": sample["test_data_paths"],
        "tokenizer_type": sample["tokenizer_type"],
        "vocab_file": sample["vocab_file"],
    }


def write_configs(directory: Path, **files: dict) -> list[str]:
    """Write {name: settings} as name.yml files; returns the file names in order."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, settings in files.items():
        (directory / f"{name}.yml").write_text(yaml.safe_dump(settings))
    return [f"{name}.yml" for name in files]


def setup_yaml(tmp: Path, name: str) -> dict:
    """save / load / log_dir under tmp/name, and a free port (tests may run side by side: pytest -n 2)."""
    from dist_helpers import free_port

    return {
        "save": str(tmp / name / "ckpt"),
        "load": str(tmp / name / "ckpt"),
        "log_dir": str(tmp / name / "run"),
        "master_port": free_port(),
    }


def train_worker(rank, world_size, argv, environ=None):
    """One rank of `train.py -d DIR files` (in a process started by dist_helpers.run_workers)."""
    os.environ.update(environ or {})
    from neox_metala.training.trainer import main

    return main(argv)


def metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def train_losses(run_dir: Path) -> dict[int, float]:
    """iteration -> loss of the training records (log_interval 1: one step each)."""
    return {r["iteration"]: r["loss"] for r in metrics(run_dir) if "loss" in r}


def run_deepy(config_dir: Path, files: list[str], timeout: int = 600, env: dict | None = None):
    command = [sys.executable, str(REPO / "deepy.py"), str(REPO / "train.py"), "-d", str(config_dir), *files]
    environment = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)
