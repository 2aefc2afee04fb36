"""Human-readable summaries: throughput and bad input per file after `tokenize`, counts for `inspect`."""

from __future__ import annotations

import sys

from .worker import BAD_KINDS


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
        bad = {kind: counts[kind] for kind in BAD_KINDS if counts[kind]}
        extra = {kind: counts[kind] for kind in ("blank_lines", "missing_split_key") if counts[kind]}
        if bad or extra:
            print(f"  {record['path']}: bad input skipped {bad or '{}'}; also {extra or '{}'}", file=stream)
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
