"""neox_metala.data.tokenizers: the fast BPE engine gives HF tokenizers' exact ids; loading and errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import sentencepiece
from tokenizers import Tokenizer, models

from neox_metala.data.tokenizers import TOKENIZER_TYPES, load_tokenizer

from prep_helpers import EDGE_TEXTS, REPO, SAMPLE_TOKENIZER


def test_fast_engine_matches_hf_on_every_document_of_the_bundled_corpus(sample_records, hf_reference):
    reference, _ = hf_reference
    tokenizer = load_tokenizer("HFTokenizer", str(SAMPLE_TOKENIZER))
    assert tokenizer.engine == "tiktoken", tokenizer.fast_engine_refusal
    texts = [record["text"] for record in sample_records] + EDGE_TEXTS
    expected = [encoding.ids for encoding in reference.encode_batch(texts)]
    assert tokenizer.encode_batch(texts) == expected
    assert sum(map(len, expected)) > 1_500_000


def _neox20b_like(tmp_path):
    """The sample tokenizer given GPT-NeoX-20B's extras: an NFC normalizer and added (non-special, normalized)
    tokens for runs of spaces, which HF splits out of the text before BPE."""
    spec = json.loads(SAMPLE_TOKENIZER.read_text())
    spec["normalizer"] = {"type": "NFC"}
    next_id = max(spec["model"]["vocab"].values()) + 1
    for width in (24, 8, 4, 2):
        spec["added_tokens"].append(
            {
                "id": next_id,
                "content": " " * width,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": True,
                "special": False,
            }
        )
        next_id += 1
    path = tmp_path / "neox20b_like.json"
    path.write_text(json.dumps(spec))
    return path


def test_fast_engine_reproduces_normalizer_and_added_tokens(tmp_path, sample_records):
    path = _neox20b_like(tmp_path)
    reference = Tokenizer.from_file(str(path))
    tokenizer = load_tokenizer("HFTokenizer", str(path))
    assert tokenizer.engine == "tiktoken", tokenizer.fast_engine_refusal
    texts = [r["text"] for r in sample_records if r["meta"]["pile_set_name"] in ("Github", "Wikipedia (en)")]
    texts += EDGE_TEXTS + ["if x:\n        return  y   <|endoftext|>    e\u0301\u0301 \u212b"]
    assert tokenizer.encode_batch(texts) == [encoding.ids for encoding in reference.encode_batch(texts)]
    assert any(reference.token_to_id(" " * 8) in ids for ids in tokenizer.encode_batch(texts))


def test_unconvertible_tokenizer_falls_back_to_hf(tmp_path):
    spec = json.loads(SAMPLE_TOKENIZER.read_text())
    spec["normalizer"] = {"type": "Lowercase"}
    path = tmp_path / "lower.json"
    path.write_text(json.dumps(spec))
    tokenizer = load_tokenizer("HFTokenizer", str(path))
    assert tokenizer.engine == "hf" and "normalizer" in tokenizer.fast_engine_refusal
    assert tokenizer.encode("Hello WORLD") == Tokenizer.from_file(str(path)).encode("Hello WORLD").ids
    with pytest.raises(ValueError, match="fast BPE engine cannot"):
        load_tokenizer("HFTokenizer", str(path), engine="fast")


def test_gpt2_style_vocab_and_merges(tmp_path):
    spec = json.loads(SAMPLE_TOKENIZER.read_text())
    (tmp_path / "vocab.json").write_text(json.dumps(spec["model"]["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = load_tokenizer("GPT2BPETokenizer", str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    assert tokenizer.engine == "tiktoken" and tokenizer.eod_id == spec["model"]["vocab"]["<|endoftext|>"]
    from tokenizers import pre_tokenizers

    reference = Tokenizer(models.BPE.from_file(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")))
    reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    for text in EDGE_TEXTS:
        assert tokenizer.encode(text) == reference.encode(text).ids


def test_sentencepiece_tokenizer(spm_model):
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_model))
    tokenizer = load_tokenizer("SPMTokenizer", str(spm_model))
    assert tokenizer.eod_id == processor.piece_to_id("<|endoftext|>") == processor.eos_id()
    assert tokenizer.pad_id == processor.piece_to_id("<|padding|>")
    assert tokenizer.vocab_size == processor.get_piece_size() == 1000
    assert tokenizer.encode_batch(EDGE_TEXTS) == [processor.encode(text) for text in EDGE_TEXTS]
    assert tokenizer.decode(tokenizer.encode(EDGE_TEXTS[2])) == EDGE_TEXTS[2]


def test_attributes_errors_and_fingerprint(tmp_path):
    tokenizer = load_tokenizer("HFTokenizer", str(SAMPLE_TOKENIZER))
    assert (tokenizer.vocab_size, tokenizer.eod_id, tokenizer.pad_id) == (8192, 0, 1)
    assert tokenizer.decode(tokenizer.encode("Hello there<|endoftext|>")) == "Hello there<|endoftext|>"
    with pytest.raises(ValueError) as error:
        load_tokenizer("NoSuchTokenizer", str(SAMPLE_TOKENIZER))
    assert all(name in str(error.value) for name in TOKENIZER_TYPES)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_tokenizer("HFTokenizer", str(tmp_path / "missing.json"))
    copy = tmp_path / "copy.json"
    shutil.copy(SAMPLE_TOKENIZER, copy)
    assert load_tokenizer("HFTokenizer", str(copy)).fingerprint == tokenizer.fingerprint
    copy.write_text(copy.read_text().replace('"<|padding|>"', '"<|pad|>"'))
    assert load_tokenizer("HFTokenizer", str(copy)).fingerprint != tokenizer.fingerprint


def test_workers_import_no_torch():
    code = (
        "import sys, neox_metala.data.tokenizers, neox_metala.data_prep.worker, neox_metala.data_prep.pipeline;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
