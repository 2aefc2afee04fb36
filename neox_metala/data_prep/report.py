"""Human-readable summaries: throughput, bad input and checksums per file after `tokenize`, counts for `inspect`."""

from __future__ import annotations

import sys

from .file_job import TRUNCATED_INPUT
from .worker import BAD_KINDS

# How an input was checked against its checksum file (checksums.Verifier.check), in the words the reports use.
CHECKSUM_WORDS = {
    "verified": "checksum verified",
    "differs": "sha256 differs",
    "not_listed": "not listed in a checksum file",
    "not_checked": "checksum not checked",
}


def damage_line(record: dict) -> str:
    """'<path>: cut or damaged at byte N: <why>; D documents before it kept' for an incomplete file's record."""
    damage = record["damage"]
    where = f" at byte {damage['offset']}" if damage.get("offset") is not None else ""
    if damage.get("kind") == "checksum":
        return f"{record['path']}: cut or damaged: {damage['detail']}"  # which says that nothing of it is used
    return (
        f"{record['path']}: cut or damaged{where}: {damage['detail']}; "
        f"{record['counts_at_resume']['documents']:,} documents before it kept"
    )


def checksum_status(record: dict) -> str:
    """A key of CHECKSUM_WORDS; "not_checked" also for records made before checksums were looked at."""
    return (record.get("checksum") or {}).get("status", "not_checked")


def checksum_line(record: dict) -> str:
    """'<path>: checksum verified (sha256 from <checksum file>)' and the like, one input file's record."""
    entry, status = record.get("checksum") or {}, checksum_status(record)
    detail = {
        "verified": f" (sha256 from {entry.get('checksum_file')})",
        "differs": f" from {entry.get('checksum_file')}: no document of it used",
        "not_checked": " (--no-checksums, or prepared before checksums were checked)",
    }.get(status, "")
    return f"{record['path']}: {CHECKSUM_WORDS[status]}{detail}"


def checksum_totals(records) -> str:
    """'checksums of 3 input file(s): 1 checksum verified, 2 not listed in a checksum file'."""
    statuses = [checksum_status(record) for record in records]
    parts = [f"{statuses.count(status)} {words}" for status, words in CHECKSUM_WORDS.items() if status in statuses]
    return f"checksums of {len(statuses)} input file(s): {', '.join(parts) or 'none'}"


def incomplete_files(manifest: dict) -> list[str]:
    """One damage_line per input file of this job that was cut or damaged, in input order."""
    records = sorted(manifest["files"].items(), key=lambda item: int(item[0]))
    return [damage_line(record) for _, record in records if record["status"] == "incomplete"]


UNVERIFIED_FRAMES = (
    "{count} input file(s) hold several zstd frames or gzip members and were not checked against a checksum; a "
    "copy cut exactly between two of them reads as complete, so check them against the corpus's published "
    "checksums (`tokenize` does it when a SHA256SUMS lies beside them or --checksums FILE names one)"
)


def unverified_multi_frame(records) -> list[str]:
    """Paths of the multi-frame inputs read to their end that no checksum verified: a cut between their frames
    would not show (inputs found cut or damaged are reported as incomplete instead)."""
    return [
        record["path"]
        for record in records
        if (record.get("frames") or 0) > 1 and checksum_status(record) != "verified" and record["status"] == "done"
    ]


def print_summary(manifest: dict, rejects_prefix: str | None = None, stream=sys.stdout) -> None:
    files = manifest["files"]
    documents = sum(record["counts_at_resume"]["documents"] for record in files.values())
    tokens = sum(record["counts_at_resume"]["tokens"] for record in files.values())
    seconds = manifest.get("last_run_seconds") or 0.0
    rate = f" in {seconds:.1f} s this run" if seconds else ""
    print(
        f"tokenize: {len(files)} input files, {documents:,} documents, {tokens:,} tokens, "
        f"{len(manifest['shards'])} shards{rate} (engine: {manifest['tokenizer'].get('engine')})",
        file=stream,
    )
    for _, record in sorted(files.items(), key=lambda item: int(item[0])):
        counts = record["counts_at_resume"]
        bad = {kind: counts.get(kind, 0) for kind in BAD_KINDS + (TRUNCATED_INPUT,) if counts.get(kind, 0)}
        extra = {kind: counts[kind] for kind in ("blank_lines", "missing_split_key") if counts[kind]}
        if bad or extra:
            print(f"  {record['path']}: bad input skipped {bad or '{}'}; also {extra or '{}'}", file=stream)
    for line in incomplete_files(manifest):
        print(f"  INCOMPLETE {line}", file=stream)
    print(f"  {checksum_totals(files.values())}", file=stream)
    multi_frame = unverified_multi_frame(files.values())
    if multi_frame:
        # The one cut no reader can see (compressed.py), in files no checksum verified: say so where the user looks.
        print(f"  note: {UNVERIFIED_FRAMES.format(count=len(multi_frame))}", file=stream)
    if rejects_prefix:
        print(f"  rejected records: {rejects_prefix}.rejects/", file=stream)


def print_counts(counts: dict, stream=sys.stdout) -> None:
    width = max([len(row["shard"]) for row in counts["shards"]] + [5])
    print(f"{'shard':<{width}}  {'stream':<24} {'documents':>12} {'tokens':>15}", file=stream)
    for row in counts["shards"]:
        print(f"{row['shard']:<{width}}  {row['stream']:<24} {row['documents']:>12,} {row['tokens']:>15,}", file=stream)
    for name, totals in sorted(counts["streams"].items()):
        print(
            f"stream {name}: {totals['shards']} shards, {totals['documents']:,} documents, {totals['tokens']:,} tokens",
            file=stream,
        )
    print(
        f"total: {len(counts['shards'])} shards, {counts['documents']:,} documents, {counts['tokens']:,} tokens",
        file=stream,
    )
