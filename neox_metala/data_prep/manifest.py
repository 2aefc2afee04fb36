"""The manifest: what a tokenize job has durably done, so a rerun resumes exactly where it stopped.

One JSON file per job, `<prefix>.manifest.json` (or `<prefix>.job0003-of-0016.manifest.json` for one job of an
array). It records the settings and tokenizer fingerprint the shards were made with, every committed shard
(stream, input file, position range, documents, tokens), and per input file the position from which a rerun
must read again, the bad-input counts up to that position, and per output stream how far it is committed.
It is replaced atomically (temporary file, fsync, rename) after every shard commit.
"""

from __future__ import annotations

import glob
import json
import os
import re

FORMAT = "neox-metala-data-prep-manifest"
FORMAT_VERSION = 1
# Settings that change the output bytes: a rerun with any of them different must not resume into the same prefix.
OUTPUT_SETTINGS = (
    "json_key",
    "split_by",
    "append_eod",
    "text_mode",
    "batch_bytes",
    "parquet_rows",
    "shard_tokens",
    "dtype",
)


def manifest_path(output_prefix: str, shard_index: int = 0, num_shards: int = 1) -> str:
    if num_shards == 1:
        return f"{output_prefix}.manifest.json"
    return f"{output_prefix}.job{shard_index:04d}-of-{num_shards:04d}.manifest.json"


def new_manifest(settings: dict, tokenizer: dict, inputs: list[str], shard_index: int, num_shards: int) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "settings": {key: settings[key] for key in OUTPUT_SETTINGS},
        "tokenizer": tokenizer,
        "job": {
            "shard_index": shard_index,
            "num_shards": num_shards,
            "inputs": inputs,
            "input_sizes": [os.path.getsize(path) for path in inputs],
        },
        "files": {},
        "shards": [],
        "complete": False,
    }


def load_manifest(path: str) -> dict:
    with open(path, encoding="utf-8") as stream:
        manifest = json.load(stream)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a neox-metala data-prep manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: manifest version {manifest.get('format_version')}, this code reads "
            f"{FORMAT_VERSION}; prepare into a fresh --output-prefix"
        )
    return manifest


def save_manifest(path: str, manifest: dict) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=1, sort_keys=True)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def check_resumable(path: str, manifest: dict, settings: dict, tokenizer: dict, inputs: list[str]) -> None:
    """Refuse to resume into outputs made with other settings, another tokenizer or another input list."""
    old = manifest["settings"]
    changed = [
        f"{key}: {old.get(key)!r} -> {settings[key]!r}" for key in OUTPUT_SETTINGS if old.get(key) != settings[key]
    ]
    if manifest["tokenizer"]["fingerprint"] != tokenizer["fingerprint"]:
        changed.append(
            f"tokenizer fingerprint {manifest['tokenizer']['fingerprint'][:12]} -> {tokenizer['fingerprint'][:12]}"
        )
    if manifest["job"]["inputs"] != inputs:
        changed.append("the list of input files")
    elif manifest["job"].get("input_sizes") != [os.path.getsize(path) for path in inputs]:
        changed.append("the size of an input file")
    if changed:
        raise ValueError(
            f"{path} was made with different settings ({'; '.join(changed)}); resume with the "
            "original ones, or prepare into a fresh --output-prefix (or pass --overwrite)"
        )


def find_manifests(output_prefix: str) -> list[str]:
    """The manifests of every job that wrote under `output_prefix` (a prefix or a manifest path)."""
    if output_prefix.endswith(".manifest.json"):
        return [output_prefix]
    paths = glob.glob(glob.escape(output_prefix) + ".manifest.json")
    paths += glob.glob(glob.escape(output_prefix) + ".job*-of-*.manifest.json")
    if not paths:
        raise FileNotFoundError(
            f"no manifest {output_prefix}.manifest.json (or .jobNNNN-of-NNNN.manifest.json): "
            "pass the --output-prefix given to `tokenize`"
        )
    return sorted(paths)


def load_all(output_prefix: str) -> list[dict]:
    """Every job's manifest under a prefix, checked to be one consistent run."""
    manifests = [load_manifest(path) for path in find_manifests(output_prefix)]
    first = manifests[0]
    for manifest in manifests[1:]:
        if (
            manifest["tokenizer"]["fingerprint"] != first["tokenizer"]["fingerprint"]
            or manifest["settings"] != first["settings"]
        ):
            raise ValueError(f"manifests under {output_prefix} disagree on settings or tokenizer")
    jobs = {manifest["job"]["shard_index"] for manifest in manifests}
    expected = first["job"]["num_shards"]
    if len(jobs) != expected:
        missing = sorted(set(range(expected)) - jobs)
        raise FileNotFoundError(f"{output_prefix}: manifests of jobs {missing} of {expected} are missing")
    return manifests


def stream_slug(split_value) -> str:
    """A file-name-safe form of a subset name: 'Gutenberg (PG-19)' -> 'Gutenberg_PG-19'."""
    if split_value is None:
        return "unknown"
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", str(split_value)).strip("_")
    return slug or "unknown"


def shard_prefix(output_prefix: str, stream: str | None, file_index: int, part: int) -> str:
    middle = f"-{stream}" if stream else ""
    return f"{output_prefix}{middle}-f{file_index:05d}-p{part:04d}"


def committed_shards(manifests: list[dict]) -> list[dict]:
    """All shard records, in (stream, input file, part) order: the order documents should be merged in."""
    shards = [shard for manifest in manifests for shard in manifest["shards"]]
    return sorted(shards, key=lambda shard: (shard["stream"] or "", shard["file_index"], shard["part"]))
