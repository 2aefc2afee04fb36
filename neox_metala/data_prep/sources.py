"""Input discovery, deterministic partition over jobs, and reading input files as position-stamped batches.

A batch is a run of whole documents cut at a fixed rule from its start position (the first line end at or after
`batch_bytes` of uncompressed text, or `parquet_rows` rows), so rereading a file from any batch start gives the same
batches: resume and every worker count see identical boundaries. Positions are uncompressed byte offsets (row
numbers for parquet).
"""

from __future__ import annotations

import glob
import gzip
import io
import os
from dataclasses import dataclass

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.zst", ".json.zst", ".jsonl.gz", ".json.gz")
TEXT_SUFFIXES = (".txt", ".txt.zst", ".txt.gz")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = JSONL_SUFFIXES + TEXT_SUFFIXES + PARQUET_SUFFIXES
READ_SIZE = 4 << 20


@dataclass
class RawBatch:
    """Documents of one input file between two positions, not yet parsed (parsing happens in a worker)."""

    file_index: int
    start: int
    end: int
    kind: str  # "jsonl" (JSON lines as bytes), "lines" (text lines as bytes), "document" (one text), "records"
    payload: object  # bytes, or for "records" a list of (text or None, split value or None)


def input_kind(path: str) -> str:
    name = path.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ValueError(f"{path}: unsupported input type; supported endings are {', '.join(SUPPORTED_SUFFIXES)}")


def discover_inputs(patterns: list[str]) -> list[str]:
    """Files named by paths, globs or folders (searched recursively for supported endings), sorted, deduplicated."""
    found = set()
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) or [pattern]
        for match in matches:
            if os.path.isdir(match):
                for root, _, names in os.walk(match):
                    found.update(os.path.join(root, n) for n in names if n.lower().endswith(SUPPORTED_SUFFIXES))
            elif os.path.isfile(match):
                input_kind(match)
                found.add(match)
            else:
                raise FileNotFoundError(f"input {pattern!r} matches no file or folder")
    if not found:
        raise FileNotFoundError(f"no input files with endings {', '.join(SUPPORTED_SUFFIXES)} in {patterns}")
    return sorted(os.path.abspath(path) for path in found)


def partition_files(files: list[str], shard_index: int, num_shards: int) -> list[int]:
    """Indices (into `files`) that job `shard_index` of `num_shards` prepares: the largest files first, each to the
    least loaded job (ties to the lowest job), so every job computes the same disjoint split from the same list."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index {shard_index} must be in [0, --num-shards {num_shards})")
    loads = [0] * num_shards
    mine = []
    by_size = sorted(range(len(files)), key=lambda i: (-os.path.getsize(files[i]), files[i]))
    for file_index in by_size:
        job = min(range(num_shards), key=lambda j: (loads[j], j))
        loads[job] += os.path.getsize(files[file_index]) or 1
        if job == shard_index:
            mine.append(file_index)
    return sorted(mine)


class _CountingFile(io.RawIOBase):
    """The compressed file, counting bytes read so the progress bar can follow compressed input."""

    def __init__(self, path: str):
        self._file = open(path, "rb", buffering=0)
        self.bytes_read = 0

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        self.bytes_read += count or 0
        return count

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()
        super().close()


class _NothingCounted:
    bytes_read = 0

    def close(self) -> None:
        pass


def open_decompressed(path: str):
    """(stream of uncompressed bytes, counting raw file) for plain, .zst and .gz inputs."""
    raw = _CountingFile(path)
    if path.lower().endswith(".zst"):
        import zstandard

        # The Pile's files use long windows (2 GiB is zstd's maximum); pzstd and `cat a.zst b.zst` make
        # several frames, all of which are the file.
        stream = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(
            raw, read_size=READ_SIZE, read_across_frames=True)
    elif path.lower().endswith(".gz"):
        stream = gzip.GzipFile(fileobj=raw)
    else:
        stream = raw
    return stream, raw


def skip_to(stream, position: int) -> None:
    """Advance an uncompressed stream to `position` (decompressing and discarding where it cannot seek)."""
    remaining = position
    while remaining > 0:
        chunk = stream.read(min(remaining, READ_SIZE))
        if not chunk:
            raise EOFError(f"input ended {remaining} bytes before resume position {position}: was it changed?")
        remaining -= len(chunk)


def iter_line_batches(stream, start: int, batch_bytes: int):
    """(start, end, payload) runs of whole lines: each ends at the first newline at or after `batch_bytes` bytes
    from its start (a longer line makes a batch by itself); the last one ends at end of file."""
    pending = bytearray()
    position, scanned = start, 0
    while True:
        cut = pending.find(b"\n", max(batch_bytes - 1, scanned)) if len(pending) >= batch_bytes else -1
        if cut < 0:
            scanned = max(len(pending), batch_bytes - 1)
            chunk = stream.read(READ_SIZE)
            if chunk:
                pending += chunk
                continue
            if pending:
                yield position, position + len(pending), bytes(pending)
            return
        payload = bytes(pending[: cut + 1])
        del pending[: cut + 1]
        scanned = 0
        yield position, position + len(payload), payload
        position += len(payload)


def iter_parquet_batches(path: str, start_row: int, rows_per_batch: int, text_key: str, split_by: str | None):
    """(start, end, records) of `rows_per_batch` rows; records are (text, split value) pairs, None where absent."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    if text_key not in names:
        raise KeyError(f"{path}: no column {text_key!r} (columns: {', '.join(names)}); pass --json-key COLUMN")
    split_column = _parquet_split_column(names, split_by)
    columns = [text_key] + ([split_column] if split_column else [])
    pending, position = [], start_row
    rows_seen = 0
    for record_batch in parquet.iter_batches(batch_size=rows_per_batch, columns=columns):
        texts = record_batch.column(0).to_pylist()
        splits = _parquet_split_values(record_batch, split_column, split_by, len(texts))
        for text, split in zip(texts, splits):
            rows_seen += 1
            if rows_seen <= start_row:
                continue
            pending.append((text, split))
            if len(pending) == rows_per_batch:
                yield position, position + len(pending), pending
                position, pending = position + len(pending), []
    if pending:
        yield position, position + len(pending), pending


def _parquet_split_column(names: list[str], split_by: str | None) -> str | None:
    if split_by is None:
        return None
    leaf = split_by.split(".")[-1]
    if leaf in names:
        return leaf
    return "meta" if "meta" in names else None


def _parquet_split_values(record_batch, split_column, split_by, count):
    if split_column is None:
        return [None] * count
    values = record_batch.column(1).to_pylist()
    if split_column == "meta":
        leaf = split_by.split(".")[-1]
        return [value.get(leaf) if isinstance(value, dict) else None for value in values]
    return values


def iter_raw_batches(path: str, file_index: int, start: int, settings: dict):
    """RawBatches of one input file from position `start`, plus the counting raw file for progress."""
    kind = input_kind(path)
    if kind == "parquet":
        counter = _NothingCounted()  # parquet is read by row groups; progress jumps when the file is done
        batches = iter_parquet_batches(path, start, settings["parquet_rows"], settings["json_key"],
                                       settings["split_by"])
        return (RawBatch(file_index, a, b, "records", records) for a, b, records in batches), counter
    stream, counter = open_decompressed(path)
    if kind == "text" and settings["text_mode"] == "document":
        return _whole_file_batch(stream, file_index, start), counter
    skip_to(stream, start)
    batch_kind = "jsonl" if kind == "jsonl" else "lines"
    batches = iter_line_batches(stream, start, settings["batch_bytes"])
    return (RawBatch(file_index, a, b, batch_kind, payload) for a, b, payload in batches), counter


def _whole_file_batch(stream, file_index: int, start: int):
    if start > 0:
        return  # the one document of this file is already committed
    payload = stream.read()
    yield RawBatch(file_index, 0, len(payload), "document", payload)
