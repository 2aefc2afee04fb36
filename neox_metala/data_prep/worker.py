"""Worker side of tokenization: parse a RawBatch into documents, count bad input, tokenize, return numpy arrays.

Runs in small processes (no torch): the tokenizer is loaded once per process by `init_worker`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from neox_metala.data.tokenizers import load_tokenizer

BAD_KINDS = ("malformed_json", "missing_key", "not_a_string", "empty_document", "invalid_utf8")
REJECT_LINE_LIMIT = 65536  # characters of a rejected line kept in the rejects file

_tokenizer = None
_settings: dict = {}


@dataclass
class ParsedBatch:
    texts: list = field(default_factory=list)
    split_values: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    rejects: list = field(default_factory=list)  # (position, reason, raw line) of each bad record


@dataclass
class EncodedBatch:
    file_index: int
    start: int
    end: int
    tokens: np.ndarray  # [sum(lengths)] token ids of all documents, EOD included, in the shard dtype
    lengths: np.ndarray  # [documents] int32 tokens per document
    split_values: list  # [documents] subset name (None when absent) or empty when not splitting
    counts: dict
    rejects: list


class BadInputError(ValueError):
    """Raised under --strict for the first bad record."""


def init_worker(tokenizer_spec: dict, settings: dict) -> None:
    global _tokenizer, _settings
    _tokenizer = load_tokenizer(
        tokenizer_spec["type"],
        tokenizer_spec["vocab_file"],
        tokenizer_spec.get("merge_file"),
        engine=tokenizer_spec.get("engine", "auto"),
    )
    if _tokenizer.fingerprint != tokenizer_spec["fingerprint"]:
        raise RuntimeError(f"tokenizer file {tokenizer_spec['vocab_file']} changed while preparing data")
    _settings = settings


def encode_raw_batch(batch) -> EncodedBatch:
    """The worker task: parse, check, tokenize one batch."""
    parsed = parse_batch(batch, _settings)
    tokens, lengths = encode_texts(_tokenizer, parsed.texts, _settings)
    if _tokenizer.engine == "tiktoken":
        _spot_check(parsed.texts, batch, _settings["spot_check_every"])
    return EncodedBatch(
        batch.file_index,
        batch.start,
        batch.end,
        tokens,
        lengths,
        parsed.split_values if _settings["split_by"] else [],
        parsed.counts,
        parsed.rejects,
    )


def encode_texts(tokenizer, texts: list[str], settings: dict):
    ids_per_doc = tokenizer.encode_batch(texts)
    if settings["append_eod"]:
        for ids in ids_per_doc:
            ids.append(tokenizer.eod_id)
    # One small array per document, then one copy: faster than numpy.fromiter over a chain of lists.
    arrays = [np.array(ids, dtype=np.int64) for ids in ids_per_doc]
    lengths = np.fromiter(map(len, arrays), dtype=np.int32, count=len(arrays))  # [documents]
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)  # [sum(lengths)]
    dtype = np.dtype(settings["dtype"])
    if tokens.size and (tokens.max() > np.iinfo(dtype).max or tokens.min() < 0):
        raise ValueError(f"token id {tokens.max()} does not fit {dtype}: is the tokenizer's vocab_size right?")
    return tokens.astype(dtype), lengths


def _spot_check(texts: list[str], batch, every: int) -> None:
    """Re-encode every `every`-th document with HF itself: the fast engine must give the same ids."""
    for index in range(0, len(texts), every):
        fast, reference = _tokenizer.encode(texts[index]), _tokenizer.reference_encode(texts[index])
        if fast != reference:
            raise RuntimeError(
                f"fast BPE engine disagrees with HF tokenizers on document {index} of the batch at position "
                f"{batch.start} of input file #{batch.file_index}; rerun with --tokenizer-engine hf "
                "into a fresh --output-prefix, and please report the document"
            )


def parse_batch(batch, settings: dict) -> ParsedBatch:
    parsed = ParsedBatch(counts={kind: 0 for kind in BAD_KINDS + ("documents", "blank_lines", "missing_split_key")})
    if batch.kind == "records":
        for offset, (text, split_value) in enumerate(batch.payload):
            _accept(parsed, text, split_value, batch.start + offset, None, settings)
    elif batch.kind == "document":
        _accept_raw_text(parsed, batch.payload, batch.start, settings, strip_newline=False)
    else:
        position = batch.start
        payload = batch.payload[:-1] if batch.payload.endswith(b"\n") else batch.payload
        for line in payload.split(b"\n") if payload or batch.payload else []:
            if batch.kind == "jsonl":
                _accept_json_line(parsed, line, position, settings)
            else:
                _accept_raw_text(parsed, line, position, settings, strip_newline=True)
            position += len(line) + 1
    return parsed


def _accept_json_line(parsed: ParsedBatch, line: bytes, position: int, settings: dict) -> None:
    if not line.strip():
        parsed.counts["blank_lines"] += 1
        return
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return _reject(parsed, "invalid_utf8", position, line, settings)
    except ValueError:
        return _reject(parsed, "malformed_json", position, line, settings)
    if not isinstance(record, dict):
        return _reject(parsed, "malformed_json", position, line, settings)
    text = _lookup(record, settings["json_key"])
    split_value = _split_value(record, settings["split_by"]) if settings["split_by"] else None
    _accept(parsed, text, split_value, position, line, settings)


def _accept_raw_text(parsed: ParsedBatch, raw: bytes, position: int, settings: dict, strip_newline: bool) -> None:
    if strip_newline and raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _reject(parsed, "invalid_utf8", position, raw, settings)
    _accept(parsed, text, None, position, raw, settings)


def _accept(parsed: ParsedBatch, text, split_value, position: int, raw, settings: dict) -> None:
    if text is None:
        return _reject(parsed, "missing_key", position, raw, settings)
    if not isinstance(text, str):
        return _reject(parsed, "not_a_string", position, raw, settings)
    if not text.strip():
        return _reject(parsed, "empty_document", position, raw, settings)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escaped in JSON ("\ud800"): no valid UTF-8 exists for it
            return _reject(parsed, "invalid_utf8", position, raw, settings)
    if settings["split_by"] and split_value is None:
        parsed.counts["missing_split_key"] += 1
    parsed.texts.append(text)
    parsed.split_values.append(None if split_value is None else str(split_value))
    parsed.counts["documents"] += 1


def _reject(parsed: ParsedBatch, reason: str, position: int, raw, settings: dict) -> None:
    if settings["strict"]:
        raise BadInputError(f"{reason} at position {position}")
    parsed.counts[reason] += 1
    if settings["keep_rejects"]:
        shown = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else repr(raw)
        parsed.rejects.append((position, reason, shown[:REJECT_LINE_LIMIT]))


def _lookup(record: dict, dotted_key: str):
    value = record
    for part in dotted_key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _split_value(record: dict, split_by: str):
    """`meta.pile_set_name` style paths, or a bare name looked up at the top level, then under "meta"."""
    if "." in split_by:
        return _lookup(record, split_by)
    if split_by in record:
        return record[split_by]
    meta = record.get("meta")
    return meta.get(split_by) if isinstance(meta, dict) else None
