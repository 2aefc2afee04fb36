"""--split-by, merge, list, inspect/count, validate, and the Slurm array job's partition of the inputs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from neox_metala.data_prep import tools
from neox_metala.data_prep.sources import partition_files

from prep_helpers import REPO, SAMPLE, SAMPLE_TOKENIZER, megatron_documents, read_jsonl_zst, run_cli

SUBSETS = {
    "Gutenberg (PG-19)": "Gutenberg_PG-19",
    "Wikipedia (en)": "Wikipedia_en",
    "Github": "Github",
    "DM Mathematics": "DM_Mathematics",
}


def _tokenize_sample(prefix: Path, *extra) -> None:
    run_cli(
        "tokenize",
        "--input",
        SAMPLE / "train",
        "--output-prefix",
        prefix,
        "--tokenizer-type",
        "HFTokenizer",
        "--vocab-file",
        SAMPLE_TOKENIZER,
        "--split-by",
        "pile_set_name",
        "--shard-tokens",
        "200K",
        "--no-progress",
        *extra,
    )


@pytest.fixture(scope="module")
def split_sample(tmp_path_factory) -> Path:
    """The sample's train files tokenized with --split-by pile_set_name (shared: the tests copy before changing)."""
    prefix = tmp_path_factory.mktemp("split") / "pile"
    _tokenize_sample(prefix)
    return prefix


def test_split_merge_list_inspect_validate(tmp_path, split_sample, hf_reference):
    tokenizer, eod = hf_reference
    prefix = tmp_path / "pile"
    for path in split_sample.parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    merged = run_cli("merge", "--prefix", prefix).stdout
    train = [r for path in sorted((SAMPLE / "train").glob("*.jsonl.zst")) for r in read_jsonl_zst(path)]
    for subset, slug in SUBSETS.items():
        texts = [r["text"] for r in train if r["meta"]["pile_set_name"] == subset]
        documents = megatron_documents(f"{prefix}-{slug}")
        assert len(documents) == len(texts), subset
        # every document of the small subsets, the first 100 of the large ones (HF's own encoder is slow)
        texts = texts if len(texts) < 200 else texts[:100]
        assert documents[: len(texts)] == [tokenizer.encode(t).ids + [eod] for t in texts], subset
        assert f"{prefix}-{slug}:" in merged
    assert tools.subset_names(str(prefix))["Gutenberg_PG-19"] == "Gutenberg (PG-19)"

    listing = run_cli("list", "--prefix", prefix).stdout
    assert listing.startswith("train_data_paths: [") and "train_data_weights: [" in listing
    weights = tools.dataset_list(str(prefix))["train_data_weights"]
    assert len(weights) == 4 and abs(sum(weights) - 1) < 1e-4

    inspected = run_cli("inspect", "--prefix", prefix, "--samples", "1").stdout
    first_shard = tools.shard_table(str(prefix))[0]
    first_text = next(r["text"] for r in train if SUBSETS[r["meta"]["pile_set_name"]] == first_shard["stream"])
    assert f"--- document 0 ---\n{first_text[:400]}" in inspected
    counts = tools.count(str(prefix))
    assert counts["documents"] == len(train) and f"total: {len(counts['shards'])} shards" in inspected

    assert run_cli("validate", "--prefix", prefix).returncode == 0


def test_validate_catches_a_truncated_bin_and_a_corrupt_index(tmp_path, split_sample):
    prefix = tmp_path / "pile"
    for path in split_sample.parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    shards = tools.shard_table(str(prefix))
    bin_path = Path(shards[0]["prefix"] + ".bin")
    bin_path.write_bytes(bin_path.read_bytes()[:-2])
    idx_path = Path(shards[1]["prefix"] + ".idx")
    data = bytearray(idx_path.read_bytes())
    data[34 + 4 * 3 : 34 + 4 * 4] = (10**6).to_bytes(4, "little")  # the fourth document's length
    idx_path.write_bytes(bytes(data))
    result = run_cli("validate", "--prefix", prefix, check=False)
    assert result.returncode == 1
    assert str(bin_path) in result.stdout and str(idx_path) in result.stdout
    direct = run_cli("validate", "--dataset", shards[0]["prefix"], check=False)
    assert direct.returncode == 1 and "bytes, the .idx describes" in direct.stdout


def test_partition_is_disjoint_complete_and_deterministic(tmp_path):
    files = []
    for index, size in enumerate([50, 10, 400, 30, 30, 90, 5]):
        path = tmp_path / f"{index}.jsonl"
        path.write_bytes(b"x" * size)
        files.append(str(path))
    parts = [partition_files(files, job, 3) for job in range(3)]
    assert sorted(i for part in parts for i in part) == list(range(len(files)))
    assert parts == [partition_files(files, job, 3) for job in range(3)]
    assert parts[0] == [2]  # the 400-byte file alone outweighs the rest


def test_slurm_array_script_equals_a_single_job(tmp_path, split_sample):
    single = tmp_path / "single/pile"
    single.parent.mkdir()
    for path in split_sample.parent.iterdir():
        shutil.copy(path, single.parent / path.name)
    tools.merge(str(single))
    env = dict(
        os.environ,
        INPUT=str(SAMPLE / "train/*.jsonl.zst"),
        PREFIX=str(tmp_path / "array/pile"),
        VOCAB_FILE=str(SAMPLE_TOKENIZER),
        EXTRA_ARGS="--shard-tokens 200K",
        REPO_DIR=str(REPO),
        VENV=str(REPO / ".venv"),
        SLURM_ARRAY_TASK_COUNT="2",
        SLURM_ARRAY_TASK_MIN="0",
        SLURM_CPUS_PER_TASK="1",
    )
    script = str(REPO / "launch/data_prep_array.sbatch")
    for task in ("0", "1"):
        subprocess.run(["bash", script], env=dict(env, SLURM_ARRAY_TASK_ID=task), check=True, capture_output=True)
    assert len(list((tmp_path / "array").glob("pile.job000*-of-0002.manifest.json"))) == 2
    done = subprocess.run(["bash", script, "merge"], env=env, check=True, capture_output=True, text=True)
    assert "train_data_paths" in done.stdout
    for name in SUBSETS.values():
        for suffix in (".bin", ".idx"):
            array_bytes = (tmp_path / f"array/pile-{name}{suffix}").read_bytes()
            assert array_bytes == Path(f"{single}-{name}{suffix}").read_bytes(), name
    assert subprocess.run(["bash", "-n", script]).returncode == 0
