"""Cut and damaged inputs: a truncated .zst (inside a frame, or between frames), .gz, .jsonl or parquet file, or a
damaged zstd frame, is an error naming the file and the byte offset, counted in the report. The documents before
the cut are kept and counted exactly: the tests compute them from the bytes with zstandard / zlib directly.
--strict fails the run; without it the file is marked incomplete and the exit code is 1, unless
--allow-partial-input is given."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from neox_metala.data_prep import tools
from neox_metala.data_prep.compressed import CheckedFrames, DamagedInputError, gzip_codec, zstd_codec

from prep_helpers import megatron_documents, run_cli, shard_files, tokenize_sample

DOCUMENTS = 200  # of the sample corpus: ~370 KB of jsonl, several 128 KiB zstd blocks


@dataclass
class Cut:
    path: Path
    kept: int  # whole documents before the cut, counted from the uncompressed bytes
    offset: int  # the byte the error must name
    says: str  # a phrase the error must contain (where or how the file is damaged)


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _zst_frames(pieces: list[bytes]) -> list[bytes]:
    compressor = zstandard.ZstdCompressor(level=3)
    return [compressor.compress(piece) for piece in pieces]


def _inside_a_frame(folder: Path, records: list[dict]) -> Cut:
    """Frames of 50, 100 and 50 documents, cut 90% into the middle one: its first blocks still decode."""
    frames = _zst_frames([_jsonl(records[:50]), _jsonl(records[50:150]), _jsonl(records[150:])])
    start = len(frames[0])
    cut = start + len(frames[1]) * 9 // 10
    recovered = zstandard.ZstdDecompressor().decompressobj().decompress(frames[1][: cut - start])
    kept = 50 + recovered.count(b"\n")
    assert 50 < kept < 150, "the cut must fall after some whole documents of the frame it cuts"
    path = folder / "inside.jsonl.zst"
    path.write_bytes(b"".join(frames)[:cut])
    return Cut(path, kept, cut, f"ends inside zstd frame 2 (it starts at byte {start})")


def _between_frames(folder: Path, records: list[dict]) -> Cut:
    """pzstd-style frames of 32 KiB of text each, whatever the line ends: cut right after frame 3."""
    data = _jsonl(records)
    frames = _zst_frames([data[at : at + (32 << 10)] for at in range(0, len(data), 32 << 10)])
    assert not data[: 3 * (32 << 10)].endswith(b"\n"), "frame 3 must end inside a document"
    cut = sum(map(len, frames[:3]))
    path = folder / "between.jsonl.zst"
    path.write_bytes(b"".join(frames)[:cut])
    return Cut(path, data[: 3 * (32 << 10)].count(b"\n"), cut, "ends inside a record")


def _gzip(folder: Path, records: list[dict]) -> Cut:
    whole = gzip.compress(_jsonl(records), mtime=0)
    cut = len(whole) * 6 // 10
    recovered = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(whole[:cut])
    path = folder / "cut.jsonl.gz"
    path.write_bytes(whole[:cut])
    return Cut(path, recovered.count(b"\n"), cut, "ends inside gzip member 1 (it starts at byte 0)")


def _plain(folder: Path, records: list[dict]) -> Cut:
    data = _jsonl(records)
    cut = len(data) * 55 // 100
    assert not data[:cut].endswith(b"\n")
    path = folder / "cut.jsonl"
    path.write_bytes(data[:cut])
    return Cut(path, data[:cut].count(b"\n"), cut, "ends inside a record")


CUTS = {"zst-inside-a-frame": _inside_a_frame, "zst-between-frames": _between_frames, "gz": _gzip, "jsonl": _plain}


@pytest.mark.parametrize("mode", ["default", "strict", "allow-partial"])
@pytest.mark.parametrize("case", sorted(CUTS))
def test_cut_input_is_an_error_naming_file_and_offset(tmp_path, sample_records, hf_reference, case, mode):
    records = sample_records[:DOCUMENTS]
    cut = CUTS[case](tmp_path, records)
    prefix = tmp_path / "out/ds"
    extra = {"default": (), "strict": ("--strict",), "allow-partial": ("--allow-partial-input", "--merge")}[mode]
    result = tokenize_sample(cut.path, prefix, *extra)
    named = f"{cut.path}: cut or damaged at byte {cut.offset}"
    if mode == "strict":
        assert result.returncode == 2, result.stderr
        assert named in result.stderr and cut.says in result.stderr and "--strict" in result.stderr
        manifest = json.loads(Path(f"{prefix}.manifest.json").read_text())
        assert not manifest["complete"] and manifest["files"]["0"]["status"] == "in_progress"
        return
    assert result.returncode == (0 if mode == "allow-partial" else 1), result.stderr
    assert f"INCOMPLETE {named}" in result.stdout and cut.says in result.stdout
    if mode == "default":
        assert named in result.stderr and "--allow-partial-input" in result.stderr
    [report] = tools.file_reports(str(prefix))
    assert report["status"] == "incomplete" and report["damage"]["offset"] == cut.offset
    assert (report["documents"], report["truncated_input"], report["malformed_json"]) == (cut.kept, 1, 0)
    assert tools.count(str(prefix))["documents"] == cut.kept
    if mode == "allow-partial":
        tokenizer, eod = hf_reference
        assert megatron_documents(prefix) == [tokenizer.encode(r["text"]).ids + [eod] for r in records[: cut.kept]]


def test_damaged_zst_frame_keeps_the_frames_before_it(tmp_path, sample_records):
    records = sample_records[:60]
    frames = _zst_frames([_jsonl(records[at : at + 20]) for at in (0, 20, 40)])
    start = len(frames[0]) + len(frames[1])
    damaged = bytearray(b"".join(frames))
    damaged[start : start + 4] = b"JUNK"  # frame 3's magic number
    (tmp_path / "damaged.jsonl.zst").write_bytes(bytes(damaged))
    result = tokenize_sample(tmp_path / "damaged.jsonl.zst", tmp_path / "out/ds")
    assert result.returncode == 1
    assert f"{tmp_path / 'damaged.jsonl.zst'}: cut or damaged at byte" in result.stderr
    assert f"zstd frame 3 (it starts at byte {start}) does not decode" in result.stderr
    [report] = tools.file_reports(str(tmp_path / "out/ds"))
    assert (report["status"], report["documents"], report["truncated_input"]) == ("incomplete", 40, 1)


def test_cut_parquet_is_reported(tmp_path):
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(100)]}), tmp_path / "rows.parquet")
    whole = (tmp_path / "rows.parquet").read_bytes()
    (tmp_path / "rows.parquet").write_bytes(whole[: len(whole) // 2])
    result = tokenize_sample(tmp_path / "rows.parquet", tmp_path / "out/ds")
    assert result.returncode == 1
    assert (
        f"{tmp_path / 'rows.parquet'}: cut or damaged at byte {len(whole) // 2}: not a complete parquet"
        in result.stderr
    )


def test_rerun_keeps_failing_until_partial_input_is_accepted(tmp_path, sample_records):
    """An incomplete file is final: reruns do not reread or recount it; merge and validate refuse it until a
    run passes --allow-partial-input."""
    cut = _inside_a_frame(tmp_path, sample_records[:DOCUMENTS])
    prefix = tmp_path / "out/ds"
    assert tokenize_sample(cut.path, prefix).returncode == 1
    first_shards, first_reports = shard_files(prefix), tools.file_reports(str(prefix))
    again = tokenize_sample(cut.path, prefix)
    assert again.returncode == 1 and str(cut.path) in again.stderr
    assert tools.file_reports(str(prefix)) == first_reports and shard_files(prefix) == first_shards
    merged = run_cli("merge", "--prefix", prefix, check=False)
    assert merged.returncode == 2 and str(cut.path) in merged.stderr
    checked = run_cli("validate", "--prefix", prefix, check=False)
    assert checked.returncode == 1 and str(cut.path) in checked.stdout
    assert tokenize_sample(cut.path, prefix, "--allow-partial-input").returncode == 0
    assert tools.file_reports(str(prefix)) == first_reports
    run_cli("merge", "--prefix", prefix)
    run_cli("validate", "--prefix", prefix)


def test_cut_between_line_aligned_frames_is_an_error_unless_accepted(tmp_path, sample_records):
    """Frames that end at line ends, cut between two, read as a complete smaller file (no format marks the last
    frame), so no reader sees the cut: a multi-frame input that no checksum verified fails the run (exit 1,
    naming it and the fixes) unless --allow-unverified-frames accepts it (test_prep_checksums.py: with a
    SHA256SUMS beside it, the cut is caught; an intact verified file passes)."""
    records = sample_records[:DOCUMENTS]
    frames = _zst_frames([_jsonl(records[at : at + 50]) for at in range(0, DOCUMENTS, 50)])
    (tmp_path / "aligned.jsonl.zst").write_bytes(b"".join(frames[:2]))
    result = tokenize_sample(tmp_path / "aligned.jsonl.zst", tmp_path / "out/ds")
    assert result.returncode == 1 and "1 input file(s) hold several zstd frames" in result.stdout
    assert "aligned.jsonl.zst" in result.stderr and "--allow-unverified-frames" in result.stderr
    assert "--checksums FILE" in result.stderr
    result = tokenize_sample(tmp_path / "aligned.jsonl.zst", tmp_path / "out/ds", "--allow-unverified-frames")
    assert result.returncode == 0 and "not listed in a checksum file" in result.stdout
    [report] = tools.file_reports(str(tmp_path / "out/ds"))
    assert (report["status"], report["frames"], report["documents"]) == ("done", 2, 100)
    assert report["checksum"] == {"status": "not_listed"}


class _Bytes(io.BytesIO):
    """A compressed file in memory, with the bytes_read that CheckedFrames reports for progress."""

    @property
    def bytes_read(self) -> int:
        return self.tell()


def _frames_of(codec: str) -> list[tuple[bytes, bytes]]:
    """(compressed frame, its text) of a small multi-frame file; zstd includes a pzstd-style skippable frame."""
    texts = [b'{"text": "one"}\n{"te', b'xt": "two"}\n', b"", b'{"text": "three"}\n']
    if codec == "gzip":
        return [(gzip.compress(text, mtime=0), text) for text in texts if text]
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"\0\0\0\0"
    return [(skippable, b"") if not text else (zstandard.ZstdCompressor().compress(text), text) for text in texts]


@pytest.mark.parametrize("feed_bytes", [1, 7, 1 << 16])
@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_every_cut_is_caught_unless_it_falls_at_a_frame_end(codec, feed_bytes):
    frames = _frames_of(codec)
    blob = b"".join(frame for frame, _ in frames)
    ends, text_at = {}, b""  # frame end offset -> the text of the frames before it
    for index in range(len(frames)):
        text_at += frames[index][1]
        ends[sum(len(frame) for frame, _ in frames[: index + 1])] = text_at
    for cut in range(len(blob) + 1):
        reader = CheckedFrames(_Bytes(blob[:cut]), zstd_codec() if codec == "zstd" else gzip_codec(), feed_bytes)
        output = b""
        try:
            while chunk := reader.read(5):
                output += chunk
        except DamagedInputError as error:
            assert cut not in ends and error.offset == cut, (cut, error)
            complete = max((end for end in ends if end < cut), default=0)
            assert ends.get(complete, b"") == output[: len(ends.get(complete, b""))]
            assert b"".join(text for _, text in frames).startswith(output)
        else:
            assert ends[cut] == output, cut
