"""train-tokenizer: sentencepiece BPE/unigram and HF byte-level BPE, with sizes and special tokens set."""

from __future__ import annotations

import json

import pytest
import sentencepiece
from tokenizers import Tokenizer

from neox_metala.data.tokenizers import load_tokenizer
from neox_metala.data_prep.train_tokenizer import train_sentencepiece

from prep_helpers import SAMPLE, run_cli


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_sentencepiece_training(tmp_path, model_type):
    model = train_sentencepiece(
        [str(SAMPLE / "val.jsonl.zst")],
        str(tmp_path / "spm"),
        vocab_size=800,
        model_type=model_type,
        special_tokens=("<|sep|>",),
        sample_bytes=400_000,
    )
    processor = sentencepiece.SentencePieceProcessor(model_file=model)
    assert processor.get_piece_size() == 800
    assert processor.id_to_piece(1) == "<|endoftext|>" and processor.id_to_piece(2) == "<|padding|>"
    sep = processor.piece_to_id("<|sep|>")
    assert sep in processor.encode("left<|sep|>right")
    tokenizer = load_tokenizer("SPMTokenizer", model)
    assert (tokenizer.eod_id, tokenizer.pad_id) == (1, 2)
    text = "    code keeps  its spaces\nand new lines"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_hf_byte_level_bpe_training_via_cli(tmp_path):
    output = tmp_path / "tok.json"
    run_cli(
        "train-tokenizer",
        "--kind",
        "hf-bpe",
        "--input",
        SAMPLE / "val.jsonl.zst",
        "--output",
        output,
        "--vocab-size",
        "600",
        "--special-tokens",
        "<|sep|>",
    )
    spec = json.loads(output.read_text())
    assert [t["content"] for t in spec["added_tokens"]] == ["<|endoftext|>", "<|padding|>", "<|sep|>"]
    assert Tokenizer.from_file(str(output)).get_vocab_size() == 600
    tokenizer = load_tokenizer("HFTokenizer", str(output))
    assert tokenizer.engine == "tiktoken" and tokenizer.eod_id == 0
    assert tokenizer.encode("a<|sep|>b") == Tokenizer.from_file(str(output)).encode("a<|sep|>b").ids
