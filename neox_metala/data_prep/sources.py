"""Input discovery, deterministic partition over jobs, and reading input files as position-stamped batches.

A batch is a run of whole documents cut at a fixed rule from its start position (the first line end at or after
`batch_bytes` of uncompressed text, or `parquet_rows` rows), so rereading a file from any batch start gives the same
batches: resume and every worker count see identical boundaries. Positions are uncompressed byte offsets (row
numbers for parquet).

A cut or damaged input raises DamagedInputError after the batches of the whole documents before the damage, so
those are kept and nothing after the damage is counted (see compressed.py for what can and cannot be detected).
"""

from __future__ import annotations

import glob
import io
import json
import os
from dataclasses import dataclass

from .checksums import CHECKSUM_FILE_NAMES
from .compressed import CODECS, CheckedFrames, DamagedInputError

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


# A checksum file (SHA256SUMS.txt beside the Pile's files) ends in .txt but is not a document.
_CHECKSUM_NAMES = {name.lower() for name in CHECKSUM_FILE_NAMES}


def _is_input_name(name: str) -> bool:
    return name.lower().endswith(SUPPORTED_SUFFIXES) and name.lower() not in _CHECKSUM_NAMES


def discover_inputs(patterns: list[str]) -> list[str]:
    """Files named by paths, globs or folders (searched recursively for supported endings), sorted, deduplicated;
    a checksum file is an input only when named by its exact path."""
    found = set()
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) or [pattern]
        for match in matches:
            if os.path.isdir(match):
                for root, _, names in os.walk(match):
                    found.update(os.path.join(root, n) for n in names if _is_input_name(n))
            elif match != pattern and os.path.basename(match).lower() in _CHECKSUM_NAMES:
                continue  # matched by a glob (pile/train/*), not named on purpose
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

    frames = None  # a plain file has no frames

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
    frames = None

    def close(self) -> None:
        pass


def open_decompressed(path: str):
    """A stream of uncompressed bytes for plain, .zst and .gz inputs, with `bytes_read` (compressed bytes, for
    progress), `frames` (None for plain files) and close(). Compressed streams raise DamagedInputError where the
    file is cut or damaged; every frame of a multi-frame file (pzstd, `cat a.zst b.zst`) belongs to the input."""
    raw = _CountingFile(path)
    suffix = os.path.splitext(path.lower())[1]
    return CheckedFrames(raw, CODECS[suffix]()) if suffix in CODECS else raw


def skip_to(stream, position: int) -> None:
    """Advance an uncompressed stream to `position` (decompressing and discarding where it cannot seek)."""
    remaining = position
    while remaining > 0:
        chunk = stream.read(min(remaining, READ_SIZE))
        if not chunk:
            raise EOFError(f"input ended {remaining} bytes before resume position {position}: was it changed?")
        remaining -= len(chunk)


def iter_line_batches(stream, start: int, batch_bytes: int, complete_record=None):
    """(start, end, payload) runs of whole lines: each ends at the first newline at or after `batch_bytes` bytes
    from its start (a longer line makes a batch by itself); the last one ends at end of file.

    When the stream raises DamagedInputError, the whole lines before it come as a last batch and the partial line
    is dropped. `complete_record(line)` judges a last line without newline: False means the file was cut inside
    that record, which is the same damage (a cut between two compressed frames shows only this way).
    """
    pending = bytearray()
    position, scanned = start, 0
    while True:
        cut = pending.find(b"\n", max(batch_bytes - 1, scanned)) if len(pending) >= batch_bytes else -1
        if cut < 0:
            scanned = max(len(pending), batch_bytes - 1)
            try:
                chunk = stream.read(READ_SIZE)
            except DamagedInputError as error:
                yield from _whole_lines(pending, position)
                raise error
            if chunk:
                pending += chunk
                continue
            tail = bytes(pending[pending.rfind(b"\n") + 1 :])
            if tail and complete_record is not None and not complete_record(tail):
                yield from _whole_lines(pending, position)
                raise DamagedInputError(
                    f"the file ends inside a record: its last line (at uncompressed position "
                    f"{position + len(pending) - len(tail)}) has no newline and is not "
                    "complete JSON",
                    offset=getattr(stream, "bytes_read", None),
                )
            if pending:
                yield position, position + len(pending), bytes(pending)
            return
        payload = bytes(pending[: cut + 1])
        del pending[: cut + 1]
        scanned = 0
        yield position, position + len(payload), payload
        position += len(payload)


def _whole_lines(pending: bytearray, position: int):
    keep = pending.rfind(b"\n") + 1
    if keep:
        yield position, position + keep, bytes(pending[:keep])


def is_complete_json(line: bytes) -> bool:
    """Whether a last line without newline is a whole JSON value; if not, the file was cut inside it. (Invalid
    UTF-8 is replaced first: it is bad input the workers count, not a sign of a cut.)"""
    if not line.strip():
        return True
    try:
        json.loads(line.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return True


def iter_parquet_batches(path: str, start_row: int, rows_per_batch: int, text_key: str, split_by: str | None):
    """(start, end, records) of `rows_per_batch` rows; records are (text, split value) pairs, None where absent."""
    import pyarrow
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as error:
        # The footer (schema, row groups) is the file's last bytes, so a cut parquet file fails here.
        raise DamagedInputError(f"not a complete parquet file ({error})", os.path.getsize(path)) from None
    names = parquet.schema_arrow.names
    if text_key not in names:
        raise KeyError(f"{path}: no column {text_key!r} (columns: {', '.join(names)}); pass --json-key COLUMN")
    split_column = _parquet_split_column(names, split_by)
    columns = [text_key] + ([split_column] if split_column else [])
    pending, position = [], start_row
    rows_seen = 0
    record_batches = parquet.iter_batches(batch_size=rows_per_batch, columns=columns)
    while True:
        try:
            record_batch = next(record_batches, None)
        except (pyarrow.ArrowException, OSError) as error:
            if pending:
                yield position, position + len(pending), pending
            # pyarrow does not say where in the file; the row number is what locates the damage.
            raise DamagedInputError(f"the rows after row {rows_seen} do not decode ({error})") from None
        if record_batch is None:
            break
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
    """RawBatches of one input file from position `start`, and the source they come from (`bytes_read` for
    progress, `frames`, close()). A cut or damaged file raises DamagedInputError, naming the file, after the
    batches of the whole documents before the damage."""
    kind = input_kind(path)
    if kind == "parquet":
        source = _NothingCounted()  # parquet is read by row groups; progress jumps when the file is done
        batches = iter_parquet_batches(
            path, start, settings["parquet_rows"], settings["json_key"], settings["split_by"]
        )
        return _located(path, (RawBatch(file_index, a, b, "records", records) for a, b, records in batches)), source
    stream = open_decompressed(path)
    if kind == "text" and settings["text_mode"] == "document":
        return _located(path, _whole_file_batch(stream, file_index, start)), stream
    return _located(path, _line_batches(stream, file_index, start, settings, kind)), stream


def _located(path: str, batches):
    try:
        yield from batches
    except DamagedInputError as error:
        raise error.located(path) from None


def _line_batches(stream, file_index: int, start: int, settings: dict, kind: str):
    skip_to(stream, start)  # in the generator, so damage before `start` is reported like any other
    batch_kind = "jsonl" if kind == "jsonl" else "lines"
    complete_record = is_complete_json if kind == "jsonl" else None  # a text line is complete whatever it holds
    for a, b, payload in iter_line_batches(stream, start, settings["batch_bytes"], complete_record):
        yield RawBatch(file_index, a, b, batch_kind, payload)


def _whole_file_batch(stream, file_index: int, start: int):
    if start > 0:
        return  # the one document of this file is already committed
    payload = stream.read()  # a cut file raises here: its one document is incomplete, so nothing is kept
    yield RawBatch(file_index, 0, len(payload), "document", payload)
