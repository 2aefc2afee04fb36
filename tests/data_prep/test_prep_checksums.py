"""Checksum files: the one cut no reader can see (a multi-frame .zst whose frames end at line ends, cut between two
frames) is caught by the corpus's SHA256SUMS; an intact file is marked verified; --checksums, --no-checksums, files
not listed, and resume without hashing again. Every run goes through the real CLI; the expected digests come
from hashlib on the bytes written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import zstandard

from neox_metala.data_prep import tools
from neox_metala.data_prep.checksums import read_checksum_file

from prep_helpers import megatron_documents, run_cli, shard_files, tokenize_sample

DOCUMENTS = 200


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _aligned_frames(records: list[dict]) -> list[bytes]:
    """One zstd frame per 50 documents: every frame ends at a line end, as a writer that closes a frame every
    N documents makes them (and `cat a.zst b.zst`)."""
    compressor = zstandard.ZstdCompressor(level=3)
    return [compressor.compress(_jsonl(records[at : at + 50])) for at in range(0, len(records), 50)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cut_with_sums(folder: Path, records: list[dict]) -> tuple[Path, Path]:
    """aligned.jsonl.zst cut after 2 of its 4 frames, and the SHA256SUMS.txt of the complete file beside it."""
    frames = _aligned_frames(records)
    path = folder / "in/aligned.jsonl.zst"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(frames[:2]))
    sums = folder / "in/SHA256SUMS.txt"
    sums.write_text(f"{_sha256(b''.join(frames))}  aligned.jsonl.zst\n")
    return path, sums


@pytest.mark.parametrize("mode", ["default", "strict", "allow-partial"])
def test_cut_between_line_aligned_frames_is_caught_by_the_checksum_beside_it(tmp_path, sample_records, mode):
    path, sums = _cut_with_sums(tmp_path, sample_records[:DOCUMENTS])
    prefix = tmp_path / "out/ds"
    extra = {"default": (), "strict": ("--strict",), "allow-partial": ("--allow-partial-input",)}[mode]
    result = tokenize_sample(path, prefix, *extra)
    named = f"{path}: cut or damaged: sha256 differs from {sums}"
    assert f"checking inputs against {sums}" in result.stderr
    assert not shard_files(prefix), "no document of a file whose sha256 differs may be written"
    if mode == "strict":
        assert result.returncode == 2, result.stderr
        assert named in result.stderr and "--strict" in result.stderr
        assert not json.loads(Path(f"{prefix}.manifest.json").read_text())["complete"]
        return
    assert result.returncode == (0 if mode == "allow-partial" else 1), result.stderr
    assert f"INCOMPLETE {named}" in result.stdout and "none of its documents is used" in result.stdout
    if mode == "default":
        assert named in result.stderr and "--allow-partial-input" in result.stderr
    [report] = tools.file_reports(str(prefix))
    assert (report["status"], report["documents"], report["truncated_input"]) == ("incomplete", 0, 1)
    assert report["damage"]["kind"] == "checksum" and report["damage"]["offset"] is None
    assert report["checksum"] == {
        "status": "differs",
        "sha256": _sha256(path.read_bytes()),
        "expected": sums.read_text().split()[0],
        "checksum_file": str(sums),
    }
    assert tools.count(str(prefix))["documents"] == 0


def test_intact_file_with_its_checksum_is_verified(tmp_path, sample_records, hf_reference):
    records = sample_records[:DOCUMENTS]
    data = b"".join(_aligned_frames(records))
    path = tmp_path / "in/whole.jsonl.zst"
    path.parent.mkdir()
    path.write_bytes(data)
    # sha256sum -b's binary marker, a comment, a file of the corpus that is not an input, CRLF line ends
    (tmp_path / "in/SHA256SUMS").write_bytes(
        f"# the corpus\r\n{_sha256(b'other')} *val.jsonl.zst\r\n{_sha256(data)} *whole.jsonl.zst\r\n".encode()
    )
    prefix = tmp_path / "out/ds"
    result = tokenize_sample(path, prefix, "--merge")
    assert result.returncode == 0, result.stderr
    assert "1 of the 2 files it lists are inputs" in result.stderr
    assert "checksums of 1 input file(s): 1 checksum verified" in result.stdout
    assert "hold several zstd frames" not in result.stdout  # verified: the invisible cut is ruled out
    [report] = tools.file_reports(str(prefix))
    assert (report["status"], report["frames"], report["documents"]) == ("done", 4, DOCUMENTS)
    assert report["checksum"] == {
        "status": "verified",
        "sha256": _sha256(data),
        "checksum_file": str(tmp_path / "in/SHA256SUMS"),
    }
    tokenizer, eod = hf_reference
    assert megatron_documents(prefix) == [tokenizer.encode(r["text"]).ids + [eod] for r in records]
    checked = run_cli("validate", "--prefix", prefix)
    assert f"input {path}: checksum verified (sha256 from {tmp_path / 'in/SHA256SUMS'})" in checked.stdout
    assert "1 checksum verified" in run_cli("list", "--prefix", prefix).stderr


def test_wrong_checksum_in_an_explicit_file_is_detected(tmp_path, sample_records):
    """--checksums replaces the files found beside the inputs; names are relative to its own folder. A plain
    jsonl file is checked like a compressed one."""
    data = _jsonl(sample_records[:20])
    path = tmp_path / "in/docs.jsonl"
    path.parent.mkdir()
    path.write_bytes(data)
    (tmp_path / "in/SHA256SUMS.txt").write_text(f"{_sha256(data)}  docs.jsonl\n")  # right, but not the one asked
    explicit = tmp_path / "sums/corpus.sha256"
    explicit.parent.mkdir()
    explicit.write_text(f"{_sha256(data + b'more')}  ../in/docs.jsonl\n")
    result = tokenize_sample(path, tmp_path / "out/ds", "--checksums", explicit)
    assert result.returncode == 1, result.stderr
    assert f"{path}: cut or damaged: sha256 differs from {explicit}" in result.stderr
    assert "SHA256SUMS.txt" not in result.stderr
    [report] = tools.file_reports(str(tmp_path / "out/ds"))
    assert (report["status"], report["documents"], report["checksum"]["status"]) == ("incomplete", 0, "differs")


def test_explicit_checksum_file_that_lists_no_input_is_refused(tmp_path, sample_records):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(_jsonl(sample_records[:5]))
    explicit = tmp_path / "SUMS"
    explicit.write_text(f"{_sha256(b'x')}  train/docs.jsonl\n")  # a name relative to another folder
    result = tokenize_sample(path, tmp_path / "out/ds", "--checksums", explicit)
    assert result.returncode == 2 and "none of the files listed is an input" in result.stderr


def test_no_checksums_keeps_the_old_behaviour(tmp_path, sample_records):
    path, _ = _cut_with_sums(tmp_path, sample_records[:DOCUMENTS])
    prefix = tmp_path / "out/ds"
    result = tokenize_sample(path, prefix, "--no-checksums")
    assert result.returncode == 1 and "--allow-unverified-frames" in result.stderr  # multi-frame, unverified
    result = tokenize_sample(path, prefix, "--no-checksums", "--allow-unverified-frames")
    assert result.returncode == 0, result.stderr
    assert "checking inputs against" not in result.stderr and "hashing" not in result.stderr
    assert "1 input file(s) hold several zstd frames" in result.stdout
    [report] = tools.file_reports(str(prefix))
    assert (report["status"], report["documents"], report["checksum"]) == ("done", 100, {"status": "not_checked"})


def test_input_not_listed_is_processed_and_the_checksum_file_is_no_input(tmp_path, sample_records):
    folder = tmp_path / "in"
    folder.mkdir()
    listed, unlisted = _jsonl(sample_records[:10]), _jsonl(sample_records[10:25])
    (folder / "a.jsonl").write_bytes(listed)
    (folder / "b.jsonl").write_bytes(unlisted)
    (folder / "sha256sums.txt").write_text(f"{_sha256(listed)}  a.jsonl\n")
    prefix = tmp_path / "out/ds"
    result = tokenize_sample(folder, prefix)  # a folder: its sha256sums.txt must not become a .txt document
    assert result.returncode == 0, result.stderr
    assert "checksums of 2 input file(s): 1 checksum verified, 1 not listed in a checksum file" in result.stdout
    reports = {Path(r["file"]).name: r for r in tools.file_reports(str(prefix))}
    assert sorted(reports) == ["a.jsonl", "b.jsonl"]
    assert (reports["a.jsonl"]["checksum"]["status"], reports["a.jsonl"]["documents"]) == ("verified", 10)
    assert (reports["b.jsonl"]["checksum"], reports["b.jsonl"]["documents"]) == ({"status": "not_listed"}, 15)


def test_several_inputs_each_meet_their_own_digest(tmp_path, sample_records):
    """Hashes run ahead of the file being read (two workers, four files): each verdict must be its own file's."""
    folder = tmp_path / "in"
    folder.mkdir()
    sums = []
    for number, name in enumerate(["a", "b", "c", "d"]):
        data = b"".join(_aligned_frames(sample_records[number * 100 : number * 100 + 100]))
        (folder / f"{name}.jsonl.zst").write_bytes(data)
        sums.append(f"{_sha256(data if name != 'c' else data[:-1])}  {name}.jsonl.zst\n")
    (folder / "SHA256SUMS").write_text("".join(sums[:3]))  # d is not listed; c's digest is another file's
    prefix = tmp_path / "out/ds"
    result = tokenize_sample(folder, prefix, "--allow-partial-input")
    assert result.returncode == 0, result.stderr
    assert "hashing 3 input file(s) before their documents are used (2 at a time" in result.stderr
    reports = {Path(r["file"]).name: r for r in tools.file_reports(str(prefix))}
    verdicts = {name: (r["status"], r["checksum"]["status"], r["documents"]) for name, r in reports.items()}
    assert verdicts == {
        "a.jsonl.zst": ("done", "verified", 100),
        "b.jsonl.zst": ("done", "verified", 100),
        "c.jsonl.zst": ("incomplete", "differs", 0),
        "d.jsonl.zst": ("done", "not_listed", 100),
    }
    assert tools.count(str(prefix))["documents"] == 300


def _bad_record_late(folder: Path, records: list[dict]) -> Path:
    """A jsonl file whose 150th line is broken JSON: --strict stops there, after some shards are committed."""
    lines = _jsonl(records).splitlines(keepends=True)
    lines.insert(150, b"{broken json\n")
    path = folder / "in/docs.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(lines))
    return path


def test_resume_does_not_hash_a_verified_file_again(tmp_path, sample_records):
    path = _bad_record_late(tmp_path, sample_records[:DOCUMENTS])
    digest = _sha256(path.read_bytes())
    (path.parent / "SHA256SUMS.txt").write_text(f"{digest}  docs.jsonl\n")
    prefix = tmp_path / "out/ds"
    first = tokenize_sample(path, prefix, "--strict")
    assert first.returncode == 2 and "malformed_json" in first.stderr and "hashing 1 input file" in first.stderr
    record = json.loads(Path(f"{prefix}.manifest.json").read_text())["files"]["0"]
    assert record["status"] == "in_progress" and record["checksum"]["sha256"] == digest
    # Same size, other bytes: only a second hash could notice. The manifest's digest stands for the file
    # (resume already refuses a changed size), which is what saves the rerun from hashing it again.
    data = path.read_bytes()
    letter = data.index(b"e", data.index(b'"text"'))  # in the first document
    path.write_bytes(data[:letter] + b"E" + data[letter + 1 :])
    assert path.stat().st_size == len(data) and _sha256(path.read_bytes()) != digest
    again = tokenize_sample(path, prefix)
    assert again.returncode == 0, again.stderr
    assert "1 input file(s) verified by an earlier run of this prefix" in again.stderr
    assert "hashing" not in again.stderr
    [report] = tools.file_reports(str(prefix))
    assert (report["status"], report["malformed_json"], report["checksum"]["sha256"]) == ("done", 1, digest)


def test_mismatch_drops_what_an_unchecked_run_committed(tmp_path, sample_records):
    path = _bad_record_late(tmp_path, sample_records[:DOCUMENTS])
    prefix = tmp_path / "out/ds"
    assert tokenize_sample(path, prefix, "--strict", "--no-checksums").returncode == 2
    assert shard_files(prefix), "the first run must have committed shards for this test to mean anything"
    (path.parent / "SHA256SUMS.txt").write_text(f"{_sha256(b'another file')}  docs.jsonl\n")
    result = tokenize_sample(path, prefix)
    assert result.returncode == 1 and f"{path}: cut or damaged: sha256 differs" in result.stderr
    assert not shard_files(prefix) and not json.loads(Path(f"{prefix}.manifest.json").read_text())["shards"]
    [report] = tools.file_reports(str(prefix))
    assert (report["status"], report["documents"], report["tokens"]) == ("incomplete", 0, 0)


def test_checksum_changed_after_verification_is_refused(tmp_path, sample_records):
    path = tmp_path / "in/docs.jsonl"
    path.parent.mkdir()
    path.write_bytes(_jsonl(sample_records[:10]))
    sums = path.parent / "SHA256SUMS.txt"
    sums.write_text(f"{_sha256(path.read_bytes())}  docs.jsonl\n")
    prefix = tmp_path / "out/ds"
    assert tokenize_sample(path, prefix).returncode == 0
    sums.write_text(f"{_sha256(b'x')}  docs.jsonl\n")
    result = tokenize_sample(path, prefix)
    assert result.returncode == 2 and "the file or its checksum changed" in result.stderr


def test_checksum_file_formats(tmp_path):
    digest = _sha256(b"a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "SUMS").write_text(
        f"{digest}  plain name.jsonl\n{digest.upper()} *sub/binary.jsonl.zst\n"
        f"SHA256 (tagged.jsonl) = {digest}\n\\{digest}  new\\nline.jsonl\n\n"
    )
    listed = read_checksum_file(str(tmp_path / "SUMS"))
    names = ["plain name.jsonl", "sub/binary.jsonl.zst", "tagged.jsonl", "new\nline.jsonl"]
    assert listed == {os.path.realpath(tmp_path / name): digest for name in names}
    (tmp_path / "MD5SUMS").write_text("0cc175b9c0f1b6a831c399e269772661  a.jsonl\n")
    with pytest.raises(ValueError, match=r"MD5SUMS, line 1: .* is not a sha256sum line"):
        read_checksum_file(str(tmp_path / "MD5SUMS"))
    (tmp_path / "TWICE").write_text(f"{digest}  a.jsonl\n{_sha256(b'b')}  ./a.jsonl\n")
    with pytest.raises(ValueError, match=r"TWICE, line 2: ./a.jsonl is listed a second time"):
        read_checksum_file(str(tmp_path / "TWICE"))
