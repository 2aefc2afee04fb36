"""Round trip: documents -> shards -> megatron-core's IndexedDataset gives back tokenizer.encode(doc) + [eod]."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece
from tokenizers import Tokenizer, models, pre_tokenizers

from neox_metala.data_prep import tools
from neox_metala.data_prep.pipeline import TokenizeOptions, run_tokenize

from prep_helpers import SAMPLE_TOKENIZER, megatron_documents, megatron_dtype, shard_files, write_jsonl_zst


def _reference(kind: str, spm_model):
    """(encode, eod) from the tokenizer libraries themselves, not from our wrapper."""
    if kind == "HFTokenizer":
        tokenizer = Tokenizer.from_file(str(SAMPLE_TOKENIZER))
        return (lambda text: tokenizer.encode(text).ids), tokenizer.token_to_id("<|endoftext|>"), SAMPLE_TOKENIZER
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_model))
    return processor.encode, processor.piece_to_id("<|endoftext|>"), spm_model


@pytest.mark.parametrize("kind", ["HFTokenizer", "SPMTokenizer"])
def test_round_trip_through_megatron_reader(tmp_path, kind, spm_model, sample_records, edge_records):
    records = sample_records[-300:] + edge_records
    write_jsonl_zst(tmp_path / "in/a.jsonl.zst", records[:150])
    write_jsonl_zst(tmp_path / "in/b.jsonl.zst", records[150:])
    encode, eod, vocab_file = _reference(kind, spm_model)
    prefix = str(tmp_path / "out/ds")
    manifest = run_tokenize(
        TokenizeOptions(
            inputs=[str(tmp_path / "in")],
            output_prefix=prefix,
            tokenizer_type=kind,
            vocab_file=str(vocab_file),
            shard_tokens=20_000,
            batch_bytes=32 << 10,
            workers=2,
            progress=False,
        )
    )
    assert len(manifest["shards"]) > 4, "small shards so that shard boundaries are exercised"
    tools.merge(prefix)
    expected = [encode(record["text"]) + [eod] for record in records]
    assert megatron_documents(prefix) == expected
    assert megatron_dtype(prefix) == np.uint16
    shard_documents = [doc for shard in tools.shard_table(prefix) for doc in megatron_documents(shard["prefix"])]
    assert shard_documents == expected


def test_int32_when_the_vocabulary_is_too_large_for_uint16(tmp_path):
    words = [f"w{i}" for i in range(70_000)]
    vocab = {"<|endoftext|>": 0, "[UNK]": 1, **{word: i + 2 for i, word in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "big.json"))
    rng = np.random.default_rng(0)
    texts = [" ".join(words[j] for j in rng.integers(0, len(words), size=50)) for _ in range(40)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    prefix = str(tmp_path / "big")
    run_tokenize(
        TokenizeOptions(
            inputs=[str(tmp_path / "in.jsonl")],
            output_prefix=prefix,
            tokenizer_type="HFTokenizer",
            vocab_file=str(tmp_path / "big.json"),
            workers=1,
            progress=False,
        )
    )
    tools.merge(prefix)
    assert megatron_dtype(prefix) == np.int32
    assert megatron_documents(prefix) == [tokenizer.encode(t).ids + [0] for t in texts]
    assert max(max(doc) for doc in megatron_documents(prefix)) > 65535


def test_text_and_parquet_inputs(tmp_path, hf_reference):
    tokenizer, eod = hf_reference
    texts = ["First plain-text document.\nIt has two lines.\n", "Second one, \u00e9l\u00e8ve."]
    (tmp_path / "txt").mkdir()
    for i, text in enumerate(texts):
        (tmp_path / f"txt/{i}.txt").write_text(text, encoding="utf-8")
    table = pa.table({"content": texts, "meta": [{"pile_set_name": "A"}, {"pile_set_name": "B"}]})
    pq.write_table(table, tmp_path / "docs.parquet", row_group_size=1)
    for name, inputs, extra in (
        ("txt", [str(tmp_path / "txt")], {}),
        ("lines", [str(tmp_path / "txt/0.txt")], {"text_mode": "lines"}),
        ("pq", [str(tmp_path / "docs.parquet")], {"json_key": "content"}),
    ):
        prefix = str(tmp_path / name)
        run_tokenize(
            TokenizeOptions(
                inputs=inputs,
                output_prefix=prefix,
                tokenizer_type="HFTokenizer",
                vocab_file=str(SAMPLE_TOKENIZER),
                workers=1,
                progress=False,
                **extra,
            )
        )
        tools.merge(prefix)
        wanted = texts if name != "lines" else texts[0].splitlines()
        assert megatron_documents(prefix) == [tokenizer.encode(t).ids + [eod] for t in wanted], name


def test_output_is_byte_identical_whatever_the_worker_count(tmp_path, sample_records):
    write_jsonl_zst(tmp_path / "in.jsonl.zst", sample_records[:600])
    outputs = []
    for workers in (1, 2):
        prefix = str(tmp_path / f"w{workers}/ds")
        run_tokenize(
            TokenizeOptions(
                inputs=[str(tmp_path / "in.jsonl.zst")],
                output_prefix=prefix,
                tokenizer_type="HFTokenizer",
                vocab_file=str(SAMPLE_TOKENIZER),
                shard_tokens=50_000,
                batch_bytes=64 << 10,
                workers=workers,
                split_by="pile_set_name",
                progress=False,
            )
        )
        outputs.append({name.split("/")[-1]: data for name, data in shard_files(prefix).items()})
    assert len(outputs[0]) > 8 and outputs[0] == outputs[1]


def test_multi_frame_zst_is_read_to_the_end(tmp_path, sample_records, hf_reference):
    """pzstd output and concatenated .zst files hold several frames: every one belongs to the input."""
    tokenizer, eod = hf_reference
    records = sample_records[:30]
    first = write_jsonl_zst(tmp_path / "a.jsonl.zst", records[:10]).read_bytes()
    second = write_jsonl_zst(tmp_path / "b.jsonl.zst", records[10:]).read_bytes()
    (tmp_path / "both.jsonl.zst").write_bytes(first + second)
    prefix = str(tmp_path / "ds")
    run_tokenize(
        TokenizeOptions(
            inputs=[str(tmp_path / "both.jsonl.zst")],
            output_prefix=prefix,
            tokenizer_type="HFTokenizer",
            vocab_file=str(SAMPLE_TOKENIZER),
            workers=1,
            progress=False,
        )
    )
    tools.merge(prefix)
    assert megatron_documents(prefix) == [tokenizer.encode(r["text"]).ids + [eod] for r in records]
