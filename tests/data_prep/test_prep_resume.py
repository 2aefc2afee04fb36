"""Resume: SIGKILL the prep midway (twice), rerun; the result equals a clean run's, byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neox_metala.data_prep import tools

from prep_helpers import REPO, SAMPLE_TOKENIZER, megatron_documents, shard_files, write_jsonl_zst

BAD_LINES = [b"{broken json\n", b'{"meta": {"pile_set_name": "X"}}\n', b'{"text": "\xff\xfe bad utf8"}\n']


def _corpus(tmp_path: Path, sample_records: list[dict]) -> list[str]:
    """Two jsonl.zst files (~7 MB of text in all: half the sample corpus, forwards and backwards) with a few bad
    lines spread through them."""
    half = sample_records[: len(sample_records) // 2]
    paths = []
    for index in range(2):
        path = tmp_path / f"in/{index:02d}.jsonl.zst"
        write_jsonl_zst(path, half if index == 0 else half[::-1])
        import zstandard

        lines = zstandard.ZstdDecompressor().decompress(path.read_bytes()).splitlines(keepends=True)
        for position, bad in zip((10, len(lines) // 2, len(lines) - 5), BAD_LINES):
            lines.insert(position, bad)
        path.write_bytes(zstandard.ZstdCompressor(level=1).compress(b"".join(lines)))
        paths.append(str(path))
    return paths


def _command(inputs: list[str], prefix: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "neox_metala.data_prep",
        "tokenize",
        "--input",
        *inputs,
        "--output-prefix",
        prefix,
        "--tokenizer-type",
        "HFTokenizer",
        "--vocab-file",
        str(SAMPLE_TOKENIZER),
        "--split-by",
        "pile_set_name",
        "--shard-tokens",
        "75K",  # with the half corpus: as many shards as 150K gave for the whole one
        "--batch-bytes",
        "64K",
        "--workers",
        "2",
        "--rejects",
        "--no-progress",
    ]


def _kill_after_shards(command: list[str], manifest: Path, shards: int) -> int:
    """Start the prep, SIGKILL its whole process group once `shards` shards are committed; returns that count."""
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    committed, deadline = 0, time.time() + 60
    try:
        while time.time() < deadline and process.poll() is None:
            try:
                state = json.loads(manifest.read_text())
                committed = len(state["shards"])
                if committed >= shards:
                    assert not state["complete"]
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, f"prep ended before it could be killed: {process.stderr.read()}"
    return committed


def _state(prefix: str) -> dict:
    manifest = json.loads(Path(prefix + ".manifest.json").read_text())
    shards = [{k: s[k] for k in ("name", "documents", "tokens", "positions")} for s in manifest["shards"]]
    files = {i: {k: v for k, v in r.items() if k != "path"} for i, r in manifest["files"].items()}
    rejects = sorted(p.read_bytes() for p in Path(prefix + ".rejects").glob("*.jsonl"))
    return {
        "shards": sorted(shards, key=lambda s: s["name"]),
        "files": files,
        "rejects": rejects,
        "bytes": {name.split("-", 1)[1]: data for name, data in shard_files(prefix).items()},
    }


@pytest.mark.timeout(240)
def test_sigkill_then_resume_equals_a_clean_run(tmp_path, sample_records):
    inputs = _corpus(tmp_path, sample_records)
    clean = str(tmp_path / "clean/ds")
    subprocess.run(_command(inputs, clean), cwd=REPO, check=True, capture_output=True)

    killed = str(tmp_path / "killed/ds")
    manifest = Path(killed + ".manifest.json")
    first = _kill_after_shards(_command(inputs, killed), manifest, shards=4)
    second = _kill_after_shards(_command(inputs, killed), manifest, shards=first + 12)
    assert second > first
    leftovers = list(Path(killed).parent.glob("*.tmp"))
    assert leftovers, "a SIGKILL mid-shard leaves partial .tmp files behind, which the rerun must clear"
    rerun = subprocess.run(_command(inputs, killed), cwd=REPO, check=True, capture_output=True, text=True)
    assert not list(Path(killed).parent.glob("*.tmp"))

    clean_state, resumed_state = _state(clean), _state(killed)
    assert resumed_state["bytes"] == clean_state["bytes"]  # same tokens, same document boundaries, same shards
    assert resumed_state["shards"] == clean_state["shards"]
    assert resumed_state["files"] == clean_state["files"]  # bad-input counts not double-counted
    assert resumed_state["rejects"] == clean_state["rejects"]
    counts = [record["counts_at_resume"] for record in resumed_state["files"].values()]
    assert all(c["malformed_json"] == 1 and c["missing_key"] == 1 and c["invalid_utf8"] == 1 for c in counts)
    assert "bad input skipped" in rerun.stdout

    tools.merge(clean)
    tools.merge(killed, str(tmp_path / "killed/merged"))
    for stream in tools.streams_of(clean):
        assert megatron_documents(f"{tmp_path}/killed/merged-{stream}") == megatron_documents(f"{clean}-{stream}")


def test_a_second_process_on_the_same_job_is_refused(tmp_path):
    import fcntl

    from neox_metala.data_prep.pipeline import TokenizeOptions, run_tokenize

    (tmp_path / "in.jsonl").write_text('{"text": "hello"}\n')
    prefix = str(tmp_path / "ds")
    with open(prefix + ".manifest.json.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a still-running first process would
        with pytest.raises(RuntimeError, match="another process is preparing"):
            run_tokenize(
                TokenizeOptions(
                    inputs=[str(tmp_path / "in.jsonl")],
                    output_prefix=prefix,
                    tokenizer_type="HFTokenizer",
                    vocab_file=str(SAMPLE_TOKENIZER),
                    workers=1,
                    progress=False,
                )
            )
