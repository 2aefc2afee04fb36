"""The bundled sample corpus (data/sample/) tokenized with its own tokenizer: what the quickstart and tests train on."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
SPLITS = {"train": "train/*.jsonl.zst", "valid": "val.jsonl.zst"}


def sample_dir() -> Path:
    if not (SAMPLE_DIR / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"{SAMPLE_DIR}: the bundled sample corpus is missing; it lives in the repository "
            "(data/sample/), so use an editable install (pip install -e .) of a checkout"
        )
    return SAMPLE_DIR


def prepare_sample(
    out_dir: str | os.PathLike | None = None, *, workers: int | None = None, progress: bool = False
) -> dict:
    """Tokenize data/sample/ into `out_dir` (default data/sample/tokenized/) and merge each split into one dataset.

    Returns {"train_data_paths": [<out>/sample_train], "valid_data_paths": [<out>/sample_valid],
    "test_data_paths": [<out>/sample_valid], "tokenizer_type": "HFTokenizer",
    "vocab_file": <data/sample/tokenizer.json>,
    "manifests": {...}}. Does nothing but return the paths when the output is already complete and was made with
    the current tokenizer; resumes an interrupted preparation.
    """
    from .pipeline import TokenizeOptions, run_tokenize
    from .tools import merge

    root = sample_dir()
    out_dir = Path(out_dir) if out_dir is not None else root / "tokenized"
    vocab_file = str(root / "tokenizer.json")
    result = {"tokenizer_type": "HFTokenizer", "vocab_file": vocab_file, "manifests": {}}
    for split, pattern in SPLITS.items():
        prefix = str(out_dir / f"sample_{split}")
        if not _is_complete(prefix, vocab_file):
            options = TokenizeOptions(
                inputs=[str(root / pattern)],
                output_prefix=prefix,
                tokenizer_type="HFTokenizer",
                vocab_file=vocab_file,
                progress=progress,
                split_by=None,
            )
            if workers is not None:
                options.workers = workers
            try:
                run_tokenize(options)
            except ValueError:  # made with another tokenizer or settings: start over
                options.overwrite = True
                run_tokenize(options)
            merge(prefix)
        result[f"{split}_data_paths"] = [prefix]
        result["manifests"][split] = prefix + ".manifest.json"
    result["test_data_paths"] = list(result["valid_data_paths"])
    return result


def _is_complete(prefix: str, vocab_file: str) -> bool:
    from neox_metala.data.tokenizers import file_fingerprint

    from .indexed import check_shard
    from .manifest import load_manifest

    manifest_file = prefix + ".manifest.json"
    if not (os.path.exists(manifest_file) and os.path.exists(prefix + ".datasets.json")):
        return False
    try:
        manifest = load_manifest(manifest_file)
    except (OSError, ValueError):
        return False
    same_tokenizer = manifest["tokenizer"]["fingerprint"] == file_fingerprint(vocab_file)
    return manifest.get("complete", False) and same_tokenizer and not check_shard(prefix)
