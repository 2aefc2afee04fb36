"""Bad input: each malformed case is counted per file, optionally written to a rejects file, fatal only with
--strict; the good documents around it are all kept."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from neox_metala.data_prep import tools
from neox_metala.data_prep.pipeline import TokenizeOptions, run_tokenize

from prep_helpers import SAMPLE_TOKENIZER, megatron_documents, run_cli

GOOD = ["The first good document.", "The second, with unicode: \u00e9\u00e8\u4e2d.", "Third and last good one."]
# (line, the kind it must be counted as)
BAD = [
    (b"{this is not json", "malformed_json"),
    (b'{"text": "truncated', "malformed_json"),
    (b"[1, 2, 3]", "malformed_json"),
    (b'{"meta": {"pile_set_name": "Pile-CC"}}', "missing_key"),
    (b'{"text": 42}', "not_a_string"),
    (b'{"text": ""}', "empty_document"),
    (b'{"text": "   \\n\\t "}', "empty_document"),
    (b'{"text": "bad bytes \xff\xfe here"}', "invalid_utf8"),
    (b'{"text": "lone surrogate \\ud800 here"}', "invalid_utf8"),
]
EXPECTED = {"malformed_json": 3, "missing_key": 1, "not_a_string": 1, "empty_document": 2, "invalid_utf8": 2}


def _bad_jsonl() -> bytes:
    good = [json.dumps({"text": text}).encode() for text in GOOD]
    lines = [good[0], *[line for line, _ in BAD[:5]], good[1], b"", *[line for line, _ in BAD[5:]], good[2]]
    return b"\n".join(lines) + b"\n"


def _inputs(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plain.jsonl").write_bytes(_bad_jsonl())
    (folder / "packed.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(_bad_jsonl()))
    return [str(folder / "packed.jsonl.zst"), str(folder / "plain.jsonl")]


def test_every_bad_case_is_counted_per_file_and_rejected(tmp_path, hf_reference):
    tokenizer, eod = hf_reference
    inputs = _inputs(tmp_path / "in")
    prefix = str(tmp_path / "out/ds")
    result = run_cli(
        "tokenize",
        "--input",
        *inputs,
        "--output-prefix",
        prefix,
        "--tokenizer-type",
        "HFTokenizer",
        "--vocab-file",
        SAMPLE_TOKENIZER,
        "--rejects",
        "--workers",
        "2",
        "--merge",
        "--no-progress",
    )
    reports = {Path(r["file"]).name: r for r in tools.file_reports(prefix)}
    assert set(reports) == {"plain.jsonl", "packed.jsonl.zst"}
    for name, report in reports.items():
        assert {kind: report[kind] for kind in EXPECTED} == EXPECTED, name
        assert report["documents"] == len(GOOD) and report["blank_lines"] == 1
        assert f"{name}: bad input skipped" in result.stdout
    assert megatron_documents(prefix) == [tokenizer.encode(t).ids + [eod] for t in GOOD * 2]
    for index in (0, 1):
        rejects = [json.loads(line) for line in Path(f"{prefix}.rejects/f{index:05d}.jsonl").read_text().splitlines()]
        assert [r["reason"] for r in rejects] == [kind for _, kind in BAD]
        assert all(r["file"] == inputs[index] for r in rejects)
        lines = _bad_jsonl().split(b"\n")
        assert [lines[0:].index(line) for line, _ in BAD] == [
            _line_number(_bad_jsonl(), r["position"]) for r in rejects
        ]


def _line_number(data: bytes, position: int) -> int:
    return data[:position].count(b"\n")


def test_strict_stops_at_the_first_bad_record_naming_file_and_reason(tmp_path):
    inputs = _inputs(tmp_path / "in")
    result = run_cli(
        "tokenize",
        "--input",
        inputs[1],
        "--output-prefix",
        tmp_path / "out/ds",
        "--tokenizer-type",
        "HFTokenizer",
        "--vocab-file",
        SAMPLE_TOKENIZER,
        "--strict",
        "--workers",
        "1",
        "--no-progress",
        check=False,
    )
    assert result.returncode != 0
    assert "plain.jsonl" in result.stderr and "malformed_json" in result.stderr and "--strict" in result.stderr
    assert not json.loads((tmp_path / "out/ds.manifest.json").read_text())["complete"]


def test_bad_text_and_parquet_records_are_counted(tmp_path):
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt/good.txt").write_text("fine text")
    (tmp_path / "txt/bad.txt").write_bytes(b"broken \xc3\x28 utf-8")
    (tmp_path / "txt/empty.txt").write_text("  \n")
    pq.write_table(pa.table({"text": ["ok", None, "", "also ok"]}), tmp_path / "rows.parquet")
    prefix = str(tmp_path / "ds")
    run_tokenize(
        TokenizeOptions(
            inputs=[str(tmp_path / "txt"), str(tmp_path / "rows.parquet")],
            output_prefix=prefix,
            tokenizer_type="HFTokenizer",
            vocab_file=str(SAMPLE_TOKENIZER),
            workers=1,
            progress=False,
        )
    )
    reports = {Path(r["file"]).name: r for r in tools.file_reports(prefix)}
    assert reports["bad.txt"]["invalid_utf8"] == 1 and reports["bad.txt"]["documents"] == 0
    assert reports["empty.txt"]["empty_document"] == 1
    assert reports["good.txt"]["documents"] == 1
    rows = reports["rows.parquet"]
    assert (rows["documents"], rows["missing_key"], rows["empty_document"]) == (2, 1, 1)
