"""Megatron indexed datasets (`.bin` tokens + `.idx` index) written and checked with numpy alone.

Byte-compatible with megatron-core 0.16.1's `IndexedDataset` and GPT-NeoX's `MMapIndexedDataset` (one sequence per
document):
    .idx = b"MMIDIDX\\x00\\x00" | u64 version=1 | u8 dtype code | u64 sequences N | u64 documents D=N+1
           | int32[N] sequence lengths | int64[N] byte pointers into .bin | int64[D] document indices 0..N
    .bin = the token ids of every sequence, back to back, in the dtype (uint16 if the vocab fits, else int32)
Writing is atomic: temporary names, fsync, then rename, so a file with the final name is always complete.
"""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np

INDEX_HEADER = b"MMIDIDX\x00\x00"
HEADER_BYTES = len(INDEX_HEADER) + 8 + 1 + 8 + 8  # = 34
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}
CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}
COPY_BUFFER = 16 << 20


def token_dtype(vocab_size: int) -> np.dtype:
    """megatron-core's rule (DType.optimal_dtype): uint16 below 65500 ids, int32 from there."""
    return np.dtype(np.uint16) if vocab_size < 65500 else np.dtype(np.int32)


def fsync_path(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_index(idx_path: str, dtype: np.dtype, lengths: np.ndarray) -> None:
    """Write an .idx for one sequence per document; `lengths` is [N] tokens per document."""
    lengths = np.asarray(lengths, dtype=np.int32)
    # [N] byte offset of each sequence: exclusive running sum of lengths times the item size
    pointers = np.zeros(lengths.size, dtype=np.int64)
    np.cumsum(lengths[:-1], dtype=np.int64, out=pointers[1:])
    pointers *= np.dtype(dtype).itemsize
    with open(idx_path, "wb") as stream:
        stream.write(INDEX_HEADER + struct.pack("<Q", 1) + struct.pack("<B", DTYPE_CODES[np.dtype(dtype)]))
        stream.write(struct.pack("<Q", lengths.size) + struct.pack("<Q", lengths.size + 1))
        stream.write(lengths.tobytes(order="C"))
        stream.write(pointers.tobytes(order="C"))
        stream.write(np.arange(lengths.size + 1, dtype=np.int64).tobytes(order="C"))
        stream.flush()
        os.fsync(stream.fileno())


class ShardWriter:
    """One output shard being filled: tokens stream to `<prefix>.bin.tmp`, lengths stay in memory (4 bytes per
    document); `commit` makes `<prefix>.bin/.idx` appear atomically."""

    def __init__(self, prefix: str, dtype: np.dtype):
        self.prefix, self.dtype = prefix, np.dtype(dtype)
        self._bin = open(prefix + ".bin.tmp", "wb", buffering=COPY_BUFFER)
        self._lengths: list[np.ndarray] = []
        self.documents = 0
        self.tokens = 0

    def add(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        self._bin.write(tokens.astype(self.dtype, copy=False).tobytes(order="C"))
        self._lengths.append(np.asarray(lengths, dtype=np.int32))
        self.documents += int(lengths.size)
        self.tokens += int(tokens.size)

    def commit(self) -> dict:
        self._bin.flush()
        os.fsync(self._bin.fileno())
        self._bin.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int32)
        write_index(self.prefix + ".idx.tmp", self.dtype, lengths)
        os.replace(self.prefix + ".bin.tmp", self.prefix + ".bin")
        os.replace(self.prefix + ".idx.tmp", self.prefix + ".idx")
        fsync_path(os.path.dirname(os.path.abspath(self.prefix)))
        return {"documents": self.documents, "tokens": self.tokens, "bin_bytes": self.tokens * self.dtype.itemsize}

    def abandon(self) -> None:
        self._bin.close()
        for suffix in (".bin.tmp", ".idx.tmp"):
            if os.path.exists(self.prefix + suffix):
                os.remove(self.prefix + suffix)


def read_index(prefix: str) -> dict:
    """The .idx fields as read-only memory maps (no copy), after checking the header."""
    path = prefix + ".idx"
    with open(path, "rb") as stream:
        header = stream.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or header[:9] != INDEX_HEADER:
        raise ValueError(f"{path}: not a megatron .idx (header {header[:9]!r}, expected {INDEX_HEADER!r})")
    version, code, sequences, documents = struct.unpack("<QBQQ", header[9:])
    if version != 1 or code not in CODE_DTYPES:
        raise ValueError(f"{path}: unsupported version {version} or dtype code {code}")
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    offset = HEADER_BYTES
    fields = {"dtype": CODE_DTYPES[code], "sequences": sequences, "documents": documents, "idx_bytes": raw.size}
    for name, dtype, count in (
        ("lengths", np.int32, sequences),
        ("pointers", np.int64, sequences),
        ("document_indices", np.int64, documents),
    ):
        end = offset + count * np.dtype(dtype).itemsize
        if end > raw.size:
            raise ValueError(f"{path}: truncated: {name} needs bytes up to {end}, the file has {raw.size}")
        fields[name] = raw[offset:end].view(dtype)
        offset = end
    fields["trailing_bytes"] = raw.size - offset
    return fields


def check_shard(prefix: str, vocab_size: int | None = None) -> list[str]:
    """Every inconsistency between a shard's .idx and its .bin (empty when it is sound)."""
    try:
        index = read_index(prefix)
    except (OSError, ValueError) as error:
        return [str(error)]
    problems = []
    lengths, pointers, documents = index["lengths"], index["pointers"], index["document_indices"]
    itemsize = index["dtype"].itemsize
    if index["trailing_bytes"]:
        problems.append(f"{prefix}.idx: {index['trailing_bytes']} bytes after the index (multimodal modes?)")
    if lengths.size and lengths.min() < 0:
        problems.append(f"{prefix}.idx: negative sequence length")
    expected = np.zeros(lengths.size, dtype=np.int64)
    np.cumsum(lengths[:-1], dtype=np.int64, out=expected[1:])
    if not np.array_equal(pointers, expected * itemsize):
        problems.append(f"{prefix}.idx: sequence pointers are not the running sum of the lengths")
    if documents.size == 0 or documents[0] != 0 or documents[-1] != lengths.size or np.any(np.diff(documents) < 0):
        problems.append(f"{prefix}.idx: document indices must rise from 0 to the sequence count {lengths.size}")
    bin_path = prefix + ".bin"
    expected_bytes = int(lengths.sum(dtype=np.int64)) * itemsize
    actual_bytes = os.path.getsize(bin_path) if os.path.exists(bin_path) else None
    if actual_bytes != expected_bytes:
        problems.append(f"{bin_path}: {actual_bytes} bytes, the .idx describes {expected_bytes}")
    elif vocab_size is not None and expected_bytes:
        largest = _largest_token(bin_path, index["dtype"])
        if largest >= vocab_size:
            problems.append(f"{bin_path}: token id {largest} is outside the vocabulary of {vocab_size}")
    return problems


def _largest_token(bin_path: str, dtype: np.dtype) -> int:
    tokens = np.memmap(bin_path, dtype=dtype, mode="r")
    step = COPY_BUFFER // dtype.itemsize  # scan in slices so memory stays flat on a many-GB shard
    return max(int(tokens[i : i + step].max()) for i in range(0, tokens.size, step))


def merge_shards(prefixes: list[str], output_prefix: str) -> dict:
    """Concatenate shards (same dtype) into one dataset, streaming: memory stays at one shard's index."""
    if not prefixes:
        raise ValueError(f"nothing to merge into {output_prefix}")
    indexes = [read_index(prefix) for prefix in prefixes]
    dtypes = {index["dtype"] for index in indexes}
    if len(dtypes) != 1:
        raise ValueError(f"cannot merge shards of different dtypes {sorted(map(str, dtypes))} into {output_prefix}")
    dtype = dtypes.pop()
    sequences = sum(int(index["sequences"]) for index in indexes)
    documents = 1 + sum(int(index["documents"]) - 1 for index in indexes)
    with open(output_prefix + ".bin.tmp", "wb") as out:
        for prefix in prefixes:
            with open(prefix + ".bin", "rb") as source:
                shutil.copyfileobj(source, out, COPY_BUFFER)
        out.flush()
        os.fsync(out.fileno())
    with open(output_prefix + ".idx.tmp", "wb") as out:
        out.write(INDEX_HEADER + struct.pack("<QBQQ", 1, DTYPE_CODES[dtype], sequences, documents))
        for index in indexes:
            out.write(np.asarray(index["lengths"]).tobytes())
        byte_offset = 0
        for index in indexes:
            out.write((np.asarray(index["pointers"]) + byte_offset).tobytes())
            byte_offset += int(index["lengths"].sum(dtype=np.int64)) * dtype.itemsize
        out.write(np.zeros(1, dtype=np.int64).tobytes())
        sequence_offset = 0
        for index in indexes:
            out.write((np.asarray(index["document_indices"][1:]) + sequence_offset).tobytes())
            sequence_offset += int(index["sequences"])
        out.flush()
        os.fsync(out.fileno())
    os.replace(output_prefix + ".bin.tmp", output_prefix + ".bin")
    os.replace(output_prefix + ".idx.tmp", output_prefix + ".idx")
    return {"prefix": output_prefix, "documents": documents - 1, "tokens": byte_offset // dtype.itemsize}
