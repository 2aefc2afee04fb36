"""Data and tokenizer keys (NeoX's data / tokenizer keys; data is NeoX's mmap .bin/.idx format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError
from .fields import Section, SourceOf, require

SPLITS = ("train", "valid", "test")


@dataclass
class DataConfig(Section):
    data_path: str | None = None
    """Prefix of one tokenized dataset (PREFIX.bin + PREFIX.idx) that `split` divides into train/valid/test.
    Exclusive with train_data_paths. NeoX default None."""

    train_data_paths: list[str] | None = None
    """Prefixes of training datasets, blended by train_data_weights. NeoX default None."""

    train_data_weights: list[float] | None = None
    """Sampling weights of train_data_paths, same length; default equal weights. NeoX default None."""

    valid_data_paths: list[str] | None = None
    """Prefixes of validation datasets. NeoX default None."""

    valid_data_weights: list[float] | None = None
    """Weights of valid_data_paths. NeoX default None."""

    test_data_paths: list[str] | None = None
    """Prefixes of test datasets. NeoX default None."""

    test_data_weights: list[float] | None = None
    """Weights of test_data_paths. NeoX default None."""

    split: str = "969,30,1"
    """Train/valid/test proportions of data_path, comma-separated. NeoX default "969, 30, 1"."""

    tokenizer_type: Literal["HFTokenizer", "SPMTokenizer"] = "HFTokenizer"
    """HFTokenizer: a HuggingFace tokenizers JSON file in vocab_file; SPMTokenizer: a SentencePiece model in
    vocab_file. NeoX default "GPT2BPETokenizer" (not supported here)."""

    vocab_file: str | None = None
    """Tokenizer file (tokenizer.json for HFTokenizer, .model for SPMTokenizer). NeoX default None."""

    merge_file: str | None = None
    """BPE merges file, for tokenizers that need one. NeoX default None."""

    num_workers: int = 2
    """DataLoader worker processes per rank. NeoX default 2."""

    def check_values(self, source_of: SourceOf) -> None:
        if self.data_path is not None and self.train_data_paths is not None:
            raise ConfigError(
                f"data_path and train_data_paths (from {source_of('train_data_paths')}) are both set; use "
                f"data_path with split, or train/valid/test_data_paths",
                source_of("data_path"),
                "data_path",
            )
        for split in SPLITS:
            self._check_weights(split, source_of)
        split_fractions(self.split, source_of("split"))
        require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}", "num_workers", source_of)

    def _check_weights(self, split: str, source_of: SourceOf) -> None:
        paths_key, weights_key = f"{split}_data_paths", f"{split}_data_weights"
        paths, weights = getattr(self, paths_key), getattr(self, weights_key)
        require(paths is None or len(paths) > 0, f"{paths_key} is empty", paths_key, source_of)
        if weights is None:
            return
        require(paths is not None, f"{weights_key} is set but {paths_key} is not", weights_key, source_of)
        require(
            len(weights) == len(paths),
            f"{weights_key} has {len(weights)} entries but {paths_key} has {len(paths)}; give one weight per path",
            weights_key,
            source_of,
        )
        require(
            all(w >= 0 for w in weights) and sum(weights) > 0,
            f"{weights_key} must be >= 0 and not all 0, got {weights}",
            weights_key,
            source_of,
        )

    def data_prefixes(self) -> list[tuple[str, str]]:
        """(key, prefix) for every dataset prefix the config names, in key order."""
        pairs = [("data_path", self.data_path)] if self.data_path else []
        for split in SPLITS:
            key = f"{split}_data_paths"
            pairs += [(key, prefix) for prefix in getattr(self, key) or []]
        return pairs


def split_fractions(split: str, source: str | None = None) -> tuple[float, float, float]:
    """ "969,30,1" -> (0.969, 0.03, 0.001); missing trailing parts are 0, as in NeoX."""
    try:
        parts = [float(part) for part in split.replace("/", ",").split(",") if part.strip()]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ConfigError(
            f'split: expected up to three non-negative proportions like "969,30,1", got {split!r}', source, "split"
        )
    parts += [0.0] * (3 - len(parts))
    total = sum(parts)
    return tuple(p / total for p in parts)
