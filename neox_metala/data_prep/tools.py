"""After `tokenize`: merge shards per stream, list datasets for a config, inspect/count, validate."""

from __future__ import annotations

import json
import os

from .indexed import check_shard, merge_shards, read_index
from .manifest import committed_shards, load_all
from .report import incomplete_files


def _folder(manifest_prefix: str) -> str:
    return os.path.dirname(os.path.abspath(manifest_prefix))


def shard_table(prefix: str) -> list[dict]:
    """One row per committed shard of every job under `prefix`: name, stream, path prefix, docs, tokens."""
    manifests = load_all(prefix)
    folder = _folder(prefix)
    return [dict(shard, prefix=os.path.join(folder, shard["name"])) for shard in committed_shards(manifests)]


def streams_of(prefix: str) -> dict[str, list[dict]]:
    streams: dict[str, list[dict]] = {}
    for shard in shard_table(prefix):
        streams.setdefault(shard["stream"], []).append(shard)
    return streams


def subset_names(prefix: str) -> dict[str, str]:
    """Output stream -> the subset name it was made from (e.g. 'Gutenberg_PG-19' -> 'Gutenberg (PG-19)')."""
    names = {}
    for manifest in load_all(prefix):
        for record in manifest["files"].values():
            names.update(record.get("subset_names", {}))
    return names


def unaccepted_incomplete_inputs(manifests: list[dict]) -> list[str]:
    """Cut or damaged input files of jobs whose last run did not pass --allow-partial-input."""
    return [
        line
        for manifest in manifests
        if not manifest.get("partial_input_allowed")
        for line in incomplete_files(manifest)
    ]


def merge(prefix: str, output_prefix: str | None = None) -> list[dict]:
    """One dataset per stream (`<out>` without --split-by, `<out>-<stream>` with it), documents in input order,
    plus `<out>.datasets.json` describing them."""
    manifests = load_all(prefix)
    unfinished = [m["job"]["shard_index"] for m in manifests if not m.get("complete")]
    if unfinished:
        raise RuntimeError(f"{prefix}: jobs {unfinished} have not finished; rerun them (they resume) before merging")
    damaged = unaccepted_incomplete_inputs(manifests)
    if damaged:
        raise RuntimeError(
            f"{prefix}: input files were cut or damaged:\n  "
            + "\n  ".join(damaged)
            + "\nreplace them and prepare again, or rerun `tokenize` with --allow-partial-input to merge "
            "what was read"
        )
    output_prefix = output_prefix or prefix
    names = subset_names(prefix)
    merged = []
    for stream, shards in sorted(streams_of(prefix).items()):
        target = f"{output_prefix}-{stream}" if stream else output_prefix
        result = merge_shards([shard["prefix"] for shard in shards], target)
        result.update(stream=stream, subset=names.get(stream), shards=len(shards))
        merged.append(result)
    with open(output_prefix + ".datasets.json", "w", encoding="utf-8") as stream:
        json.dump({"tokenizer": manifests[0]["tokenizer"], "datasets": merged}, stream, indent=1)
    return merged


def dataset_list(prefix: str) -> dict:
    """`train_data_paths` and `train_data_weights` (each stream's share of tokens; edit to reweight subsets):
    merged datasets when `merge` has run, else every shard."""
    listing = prefix + ".datasets.json"
    if os.path.exists(listing):
        with open(listing, encoding="utf-8") as stream:
            datasets = [(d["prefix"], d["tokens"]) for d in json.load(stream)["datasets"]]
    else:
        datasets = [(shard["prefix"], shard["tokens"]) for shard in shard_table(prefix)]
    total = sum(tokens for _, tokens in datasets) or 1
    return {
        "train_data_paths": [path for path, _ in datasets],
        "train_data_weights": [round(tokens / total, 6) for _, tokens in datasets],
    }


def count(prefix: str) -> dict:
    """Tokens and documents per shard and per stream, from the shards' own .idx files."""
    rows = []
    for shard in shard_table(prefix):
        index = read_index(shard["prefix"])
        rows.append(
            {
                "shard": shard["name"],
                "stream": shard["stream"] or "-",
                "documents": int(index["sequences"]),
                "tokens": int(index["lengths"].sum(dtype="int64")),
            }
        )
    per_stream: dict[str, dict] = {}
    for row in rows:
        totals = per_stream.setdefault(row["stream"], {"shards": 0, "documents": 0, "tokens": 0})
        totals["shards"] += 1
        totals["documents"] += row["documents"]
        totals["tokens"] += row["tokens"]
    return {
        "shards": rows,
        "streams": per_stream,
        "documents": sum(r["documents"] for r in rows),
        "tokens": sum(r["tokens"] for r in rows),
    }


def decode_samples(prefix: str, how_many: int = 3, max_characters: int = 400, tokenizer=None) -> list[str]:
    """The first documents of the first shard, decoded with the manifest's tokenizer (or the one given)."""
    import numpy as np

    from neox_metala.data.tokenizers import load_tokenizer

    shards = shard_table(prefix)
    if tokenizer is None:
        spec = load_all(prefix)[0]["tokenizer"]
        tokenizer = load_tokenizer(spec["type"], spec["vocab_file"], spec.get("merge_file"), engine="hf")
    if not shards:
        return []
    index = read_index(shards[0]["prefix"])
    tokens = np.memmap(shards[0]["prefix"] + ".bin", dtype=index["dtype"], mode="r")
    samples = []
    for pointer, length in list(zip(index["pointers"], index["lengths"]))[:how_many]:
        start = int(pointer) // index["dtype"].itemsize
        text = tokenizer.decode(tokens[start : start + int(length)])
        samples.append(text if len(text) <= max_characters else text[:max_characters] + " [...]")
    return samples


def validate(prefix: str, check_token_range: bool = True) -> list[str]:
    """Problems with the shards under a prefix: each .idx against its .bin, token ids against the vocabulary,
    documents/tokens against the manifest, and shards the manifest lists but the disk lacks."""
    manifests = load_all(prefix)
    vocab_size = manifests[0]["tokenizer"]["vocab_size"] if check_token_range else None
    problems = [
        f"job {m['job']['shard_index']} of {m['job']['num_shards']} has not finished (rerun it to resume)"
        for m in manifests
        if not m.get("complete")
    ]
    problems += [
        f"input file cut or damaged (rerun `tokenize` with --allow-partial-input to accept): {line}"
        for line in unaccepted_incomplete_inputs(manifests)
    ]
    for shard in shard_table(prefix):
        shard_problems = check_shard(shard["prefix"], vocab_size)
        problems += shard_problems
        if shard_problems:
            continue
        index = read_index(shard["prefix"])
        tokens = int(index["lengths"].sum(dtype="int64"))
        if (int(index["sequences"]), tokens) != (shard["documents"], shard["tokens"]):
            problems.append(
                f"{shard['prefix']}: {index['sequences']} documents / {tokens} tokens on disk, the "
                f"manifest says {shard['documents']} / {shard['tokens']}"
            )
    return problems


def validate_prefixes(prefixes: list[str], vocab_size: int | None = None) -> list[str]:
    """Problems with datasets named directly by their .bin/.idx prefix (no manifest needed)."""
    return [problem for prefix in prefixes for problem in check_shard(prefix, vocab_size)]


def input_records(prefix: str) -> list[dict]:
    """The manifest record of every input file of every job under a prefix, in input order per job."""
    return [
        record
        for manifest in load_all(prefix)
        for _, record in sorted(manifest["files"].items(), key=lambda item: int(item[0]))
    ]


def file_reports(prefix: str) -> list[dict]:
    """Per input file: status ("done", or "incomplete" when cut or damaged), frames (zstd frames or gzip members,
    None for plain files), damage (where and why, for an incomplete file), checksum (how it was checked against a
    checksum file: {"status": "verified", "sha256", "checksum_file"}, "differs" (+ "expected"), "not_listed" or
    "not_checked"; None before checksums were checked) and counts (documents, tokens, each kind of bad input)."""
    reports = []
    for manifest in load_all(prefix):
        for _, record in sorted(manifest["files"].items(), key=lambda item: int(item[0])):
            counts = record["counts_at_resume"]
            reports.append(
                {
                    "file": record["path"],
                    "status": record["status"],
                    "frames": record.get("frames"),
                    "damage": record.get("damage"),
                    "checksum": record.get("checksum"),
                    **{k: v for k, v in counts.items() if k != "rejects_bytes"},
                }
            )
    return reports
