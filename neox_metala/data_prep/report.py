"""Human-readable summaries: throughput and bad input per file after `tokenize`, counts for `inspect`."""

from __future__ import annotations

import sys

from .file_job import TRUNCATED_INPUT
from .worker import BAD_KINDS


def damage_line(record: dict) -> str:
    """'<path>: cut or damaged at byte N: <why>; D documents before it kept' for an incomplete file's record."""
    damage = record["damage"]
    where = f" at byte {damage['offset']}" if damage.get("offset") is not None else ""
    return (f"{record['path']}: cut or damaged{where}: {damage['detail']}; "
            f"{record['counts_at_resume']['documents']:,} documents before it kept")


def incomplete_files(manifest: dict) -> list[str]:
    """One damage_line per input file of this job that was cut or damaged, in input order."""
    records = sorted(manifest["files"].items(), key=lambda item: int(item[0]))
    return [damage_line(record) for _, record in records if record["status"] == "incomplete"]


def print_summary(manifest: dict, rejects_prefix: str | None = None, stream=sys.stdout) -> None:
    files = manifest["files"]
    documents = sum(record["counts_at_resume"]["documents"] for record in files.values())
    tokens = sum(record["counts_at_resume"]["tokens"] for record in files.values())
    seconds = manifest.get("last_run_seconds") or 0.0
    rate = f" in {seconds:.1f} s this run" if seconds else ""
    print(f"tokenize: {len(files)} input files, {documents:,} documents, {tokens:,} tokens, "
          f"{len(manifest['shards'])} shards{rate} (engine: {manifest['tokenizer'].get('engine')})", file=stream)
    for file_index, record in sorted(files.items(), key=lambda item: int(item[0])):
        counts = record["counts_at_resume"]
        bad = {kind: counts.get(kind, 0) for kind in BAD_KINDS + (TRUNCATED_INPUT,) if counts.get(kind, 0)}
        extra = {kind: counts[kind] for kind in ("blank_lines", "missing_split_key") if counts[kind]}
        if bad or extra:
            print(f"  {record['path']}: bad input skipped {bad or '{}'}; also {extra or '{}'}", file=stream)
    for line in incomplete_files(manifest):
        print(f"  INCOMPLETE {line}", file=stream)
    multi_frame = sum(1 for record in files.values() if (record.get("frames") or 0) > 1)
    if multi_frame:
        # The one cut no reader can see (compressed.py): say so where the user looks.
        print(f"  note: {multi_frame} input file(s) hold several zstd frames or gzip members; a copy cut exactly "
              "between two of them reads as complete, so check such files against their published checksums "
              "(sha256sum -c)", file=stream)
    if rejects_prefix:
        print(f"  rejected records: {rejects_prefix}.rejects/", file=stream)


def print_counts(counts: dict, stream=sys.stdout) -> None:
    width = max([len(row["shard"]) for row in counts["shards"]] + [5])
    print(f"{'shard':<{width}}  {'stream':<24} {'documents':>12} {'tokens':>15}", file=stream)
    for row in counts["shards"]:
        print(f"{row['shard']:<{width}}  {row['stream']:<24} {row['documents']:>12,} {row['tokens']:>15,}",
              file=stream)
    for name, totals in sorted(counts["streams"].items()):
        print(f"stream {name}: {totals['shards']} shards, {totals['documents']:,} documents, "
              f"{totals['tokens']:,} tokens", file=stream)
    print(f"total: {len(counts['shards'])} shards, {counts['documents']:,} documents, {counts['tokens']:,} tokens",
          file=stream)
