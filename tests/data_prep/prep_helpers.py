"""Shared helpers and fixtures for the data-prep tests: real files on disk, independent references (HF `tokenizers`,
sentencepiece and megatron-core's own reader), no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zstandard

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
SAMPLE_TOKENIZER = SAMPLE / "tokenizer.json"


def read_jsonl_zst(path: Path) -> list[dict]:
    data = zstandard.ZstdDecompressor().decompress(Path(path).read_bytes())
    return [json.loads(line) for line in data.splitlines()]


def write_jsonl_zst(path: Path, records: list[dict]) -> Path:
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(zstandard.ZstdCompressor(level=3).compress(lines))
    return Path(path)


def megatron_documents(prefix) -> list[list[int]]:
    """Every document of a dataset as read by megatron-core's real IndexedDataset."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    dataset = IndexedDataset(str(prefix))
    return [dataset[i].tolist() for i in range(len(dataset))]


def megatron_dtype(prefix):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    return IndexedDataset(str(prefix)).index.dtype


def run_cli(*args, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "neox_metala.data_prep", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"CLI {args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tokenize_sample(inputs, prefix: Path, *extra) -> subprocess.CompletedProcess:
    """`tokenize` of `inputs` with the sample tokenizer, two workers and small batches and shards (so that a short
    input spans several), without progress lines; its result whatever the exit code."""
    return run_cli(
        "tokenize", "--input", inputs, "--output-prefix", prefix, "--tokenizer-type", "HFTokenizer",
        "--vocab-file", SAMPLE_TOKENIZER, "--workers", "2", "--batch-bytes", "16K", "--shard-tokens", "20K",
        "--no-progress", *extra, check=False,
    )  # fmt: skip


def shard_files(prefix) -> dict[str, bytes]:
    """name -> bytes of every .bin/.idx shard written under an output prefix."""
    prefix = Path(prefix)
    return {
        p.name: p.read_bytes() for p in sorted(prefix.parent.glob(prefix.name + "-*")) if p.suffix in (".bin", ".idx")
    }


@pytest.fixture(scope="session")
def sample_records() -> list[dict]:
    """The bundled corpus in file order: train/00, train/01, val."""
    paths = sorted((SAMPLE / "train").glob("*.jsonl.zst")) + [SAMPLE / "val.jsonl.zst"]
    return [record for path in paths for record in read_jsonl_zst(path)]


@pytest.fixture(scope="session")
def hf_reference():
    """HF tokenizers' own encoder for the sample tokenizer, and its EOD id."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(SAMPLE_TOKENIZER))
    return tokenizer, tokenizer.token_to_id("<|endoftext|>")


@pytest.fixture(scope="session")
def spm_model(tmp_path_factory) -> Path:
    """A small sentencepiece BPE trained on 1 MB of the sample corpus by our train-tokenizer code."""
    from neox_metala.data_prep.train_tokenizer import train_sentencepiece

    folder = tmp_path_factory.mktemp("spm")
    return Path(
        train_sentencepiece(
            [str(SAMPLE / "train/00.jsonl.zst")], str(folder / "spm"), vocab_size=1000, sample_bytes=1 << 20
        )
    )


EDGE_TEXTS = [
    "Caf\u00e9 and cafe\u0301, na\u00efve co\u00f6perate; \u4e2d\u6587 \U0001f600 emoji.",
    "A literal <|endoftext|> inside a document, and <|padding|> too.",
    "    indented code\n\tand tabs\n\n\n   trailing spaces   ",
    "x" * 5000,
    "It's they'll've don't 1234567 3.14 $%^&*",
]


@pytest.fixture(scope="session")
def edge_records() -> list[dict]:
    return [{"text": text, "meta": {"pile_set_name": "Edge"}} for text in EDGE_TEXTS]


def concatenated(documents: list[list[int]]) -> np.ndarray:
    return np.concatenate([np.asarray(d, dtype=np.int64) for d in documents]) if documents else np.zeros(0)
