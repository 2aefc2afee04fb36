"""The bundled sample corpus: its layout and licences file, and prepare_sample (quickstart and tests use it)."""

from __future__ import annotations

import os
import time

from neox_metala.data_prep import prepare_sample

from prep_helpers import SAMPLE, megatron_documents, read_jsonl_zst


def test_sample_corpus_is_pile_layout_with_several_subsets():
    files = sorted(SAMPLE.rglob("*.jsonl.zst"))
    assert [p.relative_to(SAMPLE).as_posix() for p in files] == [
        "train/00.jsonl.zst",
        "train/01.jsonl.zst",
        "val.jsonl.zst",
    ]
    records = [r for path in files for r in read_jsonl_zst(path)]
    assert all(set(r) == {"text", "meta"} and r["text"].strip() for r in records)
    subsets = {r["meta"]["pile_set_name"] for r in records}
    assert subsets == {"Gutenberg (PG-19)", "Wikipedia (en)", "Github", "DM Mathematics"}
    assert 5e6 < sum(len(r["text"].encode()) for r in records) < 2e7
    readme = (SAMPLE / "README.md").read_text()
    assert "public domain" in readme.lower() and "build_sample_corpus.py" in readme


def test_prepare_sample_then_no_op(tmp_path, hf_reference):
    tokenizer, eod = hf_reference
    paths = prepare_sample(tmp_path / "tok")
    assert paths["tokenizer_type"] == "HFTokenizer" and paths["vocab_file"].endswith("data/sample/tokenizer.json")
    valid = megatron_documents(paths["valid_data_paths"][0])
    texts = [r["text"] for r in read_jsonl_zst(SAMPLE / "val.jsonl.zst")]
    assert valid == [tokenizer.encode(t).ids + [eod] for t in texts]
    train = paths["train_data_paths"][0]
    assert len(megatron_documents(train)) == sum(len(read_jsonl_zst(p)) for p in (SAMPLE / "train").glob("*.zst"))
    stamp = os.path.getmtime(train + ".bin")
    started = time.time()
    assert prepare_sample(tmp_path / "tok") == paths
    assert os.path.getmtime(train + ".bin") == stamp and time.time() - started < 2
