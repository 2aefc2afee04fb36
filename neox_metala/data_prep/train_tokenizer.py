"""Tokenizer training from a corpus sample: sentencepiece (BPE or unigram) or an HF byte-level BPE JSON.

Both put `<|endoftext|>` (EOD) and `<|padding|>` in the vocabulary, so `load_tokenizer` finds them, and read the
same inputs as `tokenize` (jsonl[.zst], text, parquet), bad records skipped.
"""

from __future__ import annotations

import os
import tempfile

from .sources import discover_inputs, iter_raw_batches
from .worker import parse_batch

EOD_TOKEN, PAD_TOKEN = "<|endoftext|>", "<|padding|>"
SPM_MAX_LINE_BYTES = 16384


def iter_corpus_texts(inputs: list[str], json_key: str = "text", sample_bytes: int = 100 << 20):
    """Documents of the inputs in order until `sample_bytes` of text have been given."""
    settings = {
        "json_key": json_key,
        "split_by": None,
        "text_mode": "document",
        "batch_bytes": 1 << 20,
        "parquet_rows": 1024,
        "strict": False,
        "keep_rejects": False,
    }
    given = 0
    for file_index, path in enumerate(discover_inputs(inputs)):
        batches, counter = iter_raw_batches(path, file_index, 0, settings)
        try:
            for batch in batches:
                for text in parse_batch(batch, settings).texts:
                    yield text
                    given += len(text)
                    if given >= sample_bytes:
                        return
        finally:
            counter.close()


def train_hf_byte_level_bpe(
    inputs: list[str],
    output_json: str,
    vocab_size: int = 8192,
    special_tokens: tuple = (),
    json_key: str = "text",
    sample_bytes: int = 100 << 20,
) -> str:
    """A GPT-2-style byte-level BPE (no normalizer, GPT-2 split regex); ids 0 and 1 are EOD and padding."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[EOD_TOKEN, PAD_TOKEN, *special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(iter_corpus_texts(inputs, json_key, sample_bytes), trainer=trainer)
    os.makedirs(os.path.dirname(os.path.abspath(output_json)), exist_ok=True)
    tokenizer.save(output_json)
    return output_json


def train_sentencepiece(
    inputs: list[str],
    model_prefix: str,
    vocab_size: int = 32000,
    model_type: str = "bpe",
    special_tokens: tuple = (),
    json_key: str = "text",
    sample_bytes: int = 100 << 20,
    character_coverage: float = 0.9999,
    byte_fallback: bool = True,
) -> str:
    """A sentencepiece model at `<model_prefix>.model`: unk=0, EOD `<|endoftext|>`=1 (its eos), `<|padding|>`=2,
    no BOS, identity normalization and whitespace kept as is (lossless on code), unknown bytes as <0x..> pieces."""
    import sentencepiece

    if model_type not in ("bpe", "unigram"):
        raise ValueError(f"--model-type {model_type!r}: sentencepiece training here supports 'bpe' and 'unigram'")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as lines:
        for text in iter_corpus_texts(inputs, json_key, sample_bytes):
            for line in text.splitlines():
                if line.strip() and len(line.encode("utf-8")) <= SPM_MAX_LINE_BYTES:
                    lines.write(line + "\n")
    try:
        sentencepiece.SentencePieceTrainer.train(
            input=lines.name,
            model_prefix=model_prefix,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            unk_id=0,
            eos_id=1,
            eos_piece=EOD_TOKEN,
            pad_id=2,
            pad_piece=PAD_TOKEN,
            bos_id=-1,
            user_defined_symbols=list(special_tokens),
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            split_digits=True,
            allow_whitespace_only_pieces=True,
            max_sentence_length=SPM_MAX_LINE_BYTES,
            input_sentence_size=2_000_000,
            shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    finally:
        os.remove(lines.name)
    return model_prefix + ".model"
