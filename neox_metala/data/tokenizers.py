"""Tokenizers shared by data prep and the training runtime, under GPT-NeoX's `tokenizer_type` names.

`load_tokenizer("HFTokenizer", "tokenizer.json")`, `load_tokenizer("SPMTokenizer", "spm.model")` or
`load_tokenizer("GPT2BPETokenizer", "vocab.json", "merges.txt")` give an object with `vocab_size`, `eod_id`,
`pad_id`, `encode`, `encode_batch`, `decode` and `fingerprint`.

A byte-level BPE (GPT-2, GPT-NeoX-20B, the bundled sample tokenizer) is encoded by tiktoken's BPE engine fed the
same vocabulary, merges and pre-tokenization regex: the same ids several times faster. The conversion is refused,
and HF `tokenizers` used instead, whenever it cannot be exact (see `_fast_bpe_from_hf_json`); the result is also
checked against HF on probe strings at load time and, by data prep, on the input itself.

Imports no torch: data-prep workers must stay small and quick to start.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from functools import lru_cache

TOKENIZER_TYPES = ("HFTokenizer", "SPMTokenizer", "GPT2BPETokenizer")
EOD_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "<|eot_id|>")
PAD_CANDIDATES = ("<|padding|>", "<pad>", "<|pad|>", "[PAD]")
ENGINES = ("auto", "hf", "fast")

# The GPT-2 pre-tokenization regex that HF's ByteLevel(use_regex=True) applies.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_UNICODE_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD"}
# Strings on which the fast engine must agree with HF before it is used at all: contractions, digits, runs of
# spaces and newlines, accents (composed and not), CJK, emoji, control characters and the EOD token in text.
PROBE_TEXTS = (
    "Hello world! It's 2026; they'll've said: \"don't\".  Two  spaces,\ttab,\n\nnew lines\r\n",
    "    def f(x):\n        return x ** 2  # indented code\n\n\n",
    "Cafe\u0301 caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \uff21\uff22 \u2460 \u00bd x\u00b2",
    "\u4e2d\u6587\u6587\u672c \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4 \U0001f600\U0001f44d\U0001f3fd",  # noqa: E501
    "end<|endoftext|>start <|padding|> 123456789 3.14159 1,000,000",
    "\x00\x07 \u200b\u00a0\u3000 trailing   ",
)


def load_tokenizer(tokenizer_type: str, vocab_file: str, merge_file: str | None = None, *, engine: str = "auto"):
    """Tokenizer of GPT-NeoX's `tokenizer_type` from its file(s); `engine` ("auto", "hf" or "fast") picks the
    BPE engine of an HFTokenizer/GPT2BPETokenizer ("fast" raises if the tokenizer cannot be converted)."""
    if tokenizer_type not in TOKENIZER_TYPES:
        raise ValueError(f"unknown tokenizer_type {tokenizer_type!r}: valid ones are {', '.join(TOKENIZER_TYPES)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown tokenizer engine {engine!r}: valid ones are {', '.join(ENGINES)}")
    _require_file(vocab_file, "vocab_file", tokenizer_type)
    if tokenizer_type == "SPMTokenizer":
        return SPMTokenizer(vocab_file)
    if tokenizer_type == "GPT2BPETokenizer":
        if merge_file is None:
            raise ValueError("GPT2BPETokenizer needs merge_file (merges.txt) as well as vocab_file (vocab.json)")
        _require_file(merge_file, "merge_file", tokenizer_type)
        return HFTokenizer(vocab_file, merge_file=merge_file, engine=engine)
    return HFTokenizer(vocab_file, engine=engine)


def _require_file(path, role: str, tokenizer_type: str) -> None:
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(f"{tokenizer_type}: {role} {path!r} does not exist; pass the path of an existing file")


def file_fingerprint(*paths: str) -> str:
    """sha256 over the files' contents (length-prefixed), so a tokenizer is recognised whatever its path."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as stream:
            content = stream.read()
        digest.update(len(content).to_bytes(8, "little"))
        digest.update(content)
    return digest.hexdigest()


class HFTokenizer:
    """An HF `tokenizers` JSON (or GPT-2's vocab.json + merges.txt), with tiktoken as the engine where exact."""

    def __init__(self, vocab_file: str, merge_file: str | None = None, engine: str = "auto"):
        from tokenizers import Tokenizer

        self.files = (vocab_file,) if merge_file is None else (vocab_file, merge_file)
        self.fingerprint = file_fingerprint(*self.files)
        if merge_file is None:
            self.name = "HFTokenizer"
            self._hf = Tokenizer.from_file(vocab_file)
        else:
            self.name = "GPT2BPETokenizer"
            self._hf = _gpt2_bpe_from_files(vocab_file, merge_file)
        self.vocab_size = self._hf.get_vocab_size(with_added_tokens=True)
        self.eod_id = _first_token_id(self._hf.token_to_id, EOD_CANDIDATES)
        if self.eod_id is None:
            raise ValueError(
                f"{vocab_file}: no end-of-document token among {', '.join(EOD_CANDIDATES)}; "
                "add '<|endoftext|>' to the tokenizer's special tokens"
            )
        pad_id = _first_token_id(self._hf.token_to_id, PAD_CANDIDATES)
        self.pad_id = self.eod_id if pad_id is None else pad_id
        self._fast, self.fast_engine_refusal = None, None
        if engine != "hf":
            self._fast, self.fast_engine_refusal = _fast_bpe_from_hf_json(json.loads(self._hf.to_str()), self._hf)
            if self._fast is None and engine == "fast":
                raise ValueError(
                    f"{vocab_file}: the fast BPE engine cannot encode this tokenizer exactly: "
                    f"{self.fast_engine_refusal}; use engine='hf'"
                )
        self.engine = "hf" if self._fast is None else "tiktoken"

    @property
    def eod(self) -> int:
        return self.eod_id

    def encode(self, text: str) -> list[int]:
        if self._fast is not None:
            return self._fast.encode(text)
        return self._hf.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self._fast is not None:
            return [self._fast.encode(text) for text in texts]
        return [encoding.ids for encoding in self._hf.encode_batch(texts)]

    def reference_encode(self, text: str) -> list[int]:
        """HF `tokenizers`' own ids, which the fast engine must reproduce."""
        return self._hf.encode(text).ids

    def use_reference_engine(self) -> None:
        self._fast, self.engine = None, "hf"

    def decode(self, ids) -> str:
        return self._hf.decode([int(i) for i in ids], skip_special_tokens=False)


class SPMTokenizer:
    """A sentencepiece model (BPE or unigram); EOD is its `<|endoftext|>` piece, else its eos."""

    def __init__(self, model_file: str):
        import sentencepiece

        self.name, self.engine, self.files = "SPMTokenizer", "sentencepiece", (model_file,)
        self.fingerprint = file_fingerprint(model_file)
        self._sp = sentencepiece.SentencePieceProcessor(model_file=model_file)
        self.vocab_size = self._sp.get_piece_size()
        self.eod_id = _first_token_id(self._piece_id, EOD_CANDIDATES)
        if self.eod_id is None and self._sp.eos_id() >= 0:
            self.eod_id = self._sp.eos_id()
        if self.eod_id is None:
            raise ValueError(
                f"{model_file}: no '<|endoftext|>' piece and no eos id; retrain it with "
                "`neox-metala-prep train-tokenizer` (it adds one) or set eos_id"
            )
        pad_id = _first_token_id(self._piece_id, PAD_CANDIDATES)
        if pad_id is None and self._sp.pad_id() >= 0:
            pad_id = self._sp.pad_id()
        self.pad_id = self.eod_id if pad_id is None else pad_id

    def _piece_id(self, piece: str) -> int | None:
        piece_id = self._sp.piece_to_id(piece)
        return piece_id if self._sp.id_to_piece(piece_id) == piece else None

    @property
    def eod(self) -> int:
        return self.eod_id

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # One thread: data prep parallelises over processes, and extra threads would only contend for the cores.
        return self._sp.encode(texts, num_threads=1)

    def decode(self, ids) -> str:
        return self._sp.decode([int(i) for i in ids])


def _first_token_id(lookup, candidates) -> int | None:
    for token in candidates:
        token_id = lookup(token)
        if token_id is not None:
            return token_id
    return None


def _gpt2_bpe_from_files(vocab_file: str, merge_file: str):
    """GPT-2's vocab.json + merges.txt as an HF byte-level BPE, with no added tokens, as GPT-NeoX's
    GPT2BPETokenizer (OpenAI's encoder) reads them: `<|endoftext|>` in text is ordinary text there too."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE.from_file(vocab_file, merge_file))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: the printable character that stands for each byte -> the byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


def _fast_bpe_from_hf_json(spec: dict, hf_tokenizer):
    """(FastByteLevelBPE, None) when tiktoken can reproduce this HF tokenizer exactly, else (None, reason)."""
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return None, "tiktoken is not installed (pip install tiktoken)"
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        return None, f"model type {model.get('type')!r} is not BPE"
    for flag in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback", "ignore_merges"):
        if model.get(flag):
            return None, f"BPE option {flag}={model.get(flag)!r} is not supported by the fast engine"
    pattern = _split_pattern(spec.get("pre_tokenizer"))
    if pattern is None:
        return None, f"pre_tokenizer {json.dumps(spec.get('pre_tokenizer'))[:200]} is not plain byte-level"
    normalize = _unicode_normalizer(spec.get("normalizer"))
    if normalize is False:
        return None, f"normalizer {json.dumps(spec.get('normalizer'))[:200]} has no exact Python equivalent"
    post = spec.get("post_processor")
    if post is not None and post.get("type") != "ByteLevel":
        return None, f"post_processor {post.get('type')!r} may add tokens"
    if any(token.get(flag) for token in spec.get("added_tokens", []) for flag in ("lstrip", "rstrip", "single_word")):
        return None, "an added token uses lstrip/rstrip/single_word"
    ranks, rank_to_id, reason = _mergeable_ranks(model["vocab"], model["merges"])
    if ranks is None:
        return None, reason
    fast = FastByteLevelBPE(pattern, ranks, rank_to_id, spec.get("added_tokens", []), normalize)
    for text in PROBE_TEXTS:
        if fast.encode(text) != hf_tokenizer.encode(text).ids:
            return None, f"the converted engine disagrees with HF on probe text {text[:40]!r}"
    return fast, None


def _split_pattern(pre_tokenizer) -> str | None:
    if pre_tokenizer is None:
        return None
    kind = pre_tokenizer.get("type")
    if kind == "ByteLevel":
        ok = pre_tokenizer.get("use_regex", True) and not pre_tokenizer.get("add_prefix_space", False)
        return GPT2_SPLIT_PATTERN if ok else None
    if kind == "Sequence" and len(pre_tokenizer.get("pretokenizers", [])) == 2:
        split, byte_level = pre_tokenizer["pretokenizers"]
        plain_split = (
            split.get("type") == "Split"
            and "Regex" in split.get("pattern", {})
            and split.get("behavior") == "Isolated"
            and not split.get("invert")
        )
        plain_bytes = (
            byte_level.get("type") == "ByteLevel"
            and not byte_level.get("use_regex", True)
            and not byte_level.get("add_prefix_space", False)
        )
        return split["pattern"]["Regex"] if plain_split and plain_bytes else None
    return None


def _unicode_normalizer(normalizer):
    """None for no normalizer, a str -> str function for NFC/NFD/NFKC/NFKD (or a Sequence of them), else False."""
    if normalizer is None:
        return None
    steps = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    forms = [step.get("type") for step in steps]
    if not all(form in _UNICODE_NORMALIZERS for form in forms):
        return False
    if not forms:
        return None

    def normalize(text: str) -> str:
        for form in forms:
            text = unicodedata.normalize(form, text)
        return text

    return normalize


def _mergeable_ranks(vocab: dict, merges: list):
    """tiktoken ranks (bytes -> rank) from HF vocab + merges: the 256 byte tokens, then one rank per merge in
    merge order, so tiktoken merges in HF's priority order; `rank_to_id` maps ranks back to HF ids when the two
    orders differ (None when rank == id). Returns (None, None, reason) where no exact conversion exists."""
    alphabet = _byte_level_alphabet()

    def token_bytes(token: str):
        try:
            return bytes(alphabet[char] for char in token)
        except KeyError:
            return None

    ranks, rank_to_id = {}, []
    for char, byte in sorted(alphabet.items(), key=lambda item: item[1]):
        if char not in vocab:
            return None, None, f"byte {byte} has no token: not a byte-level vocabulary"
        ranks[bytes([byte])] = len(rank_to_id)
        rank_to_id.append(vocab[char])
    for merge in merges:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        merged = token_bytes(left + right)
        if merged is None or (left + right) not in vocab:
            return None, None, f"merge {left!r} + {right!r} does not give a byte-level vocabulary token"
        if merged in ranks:
            return None, None, f"token {left + right!r} is made by more than one merge"
        ranks[merged] = len(rank_to_id)
        rank_to_id.append(vocab[left + right])
    identity = all(rank == token_id for rank, token_id in enumerate(rank_to_id))
    return ranks, (None if identity else rank_to_id), None


class FastByteLevelBPE:
    """tiktoken's BPE core plus HF's handling of added tokens and Unicode normalization, in HF's order: split out
    non-normalized added tokens, normalize the rest, split out normalized added tokens, BPE what remains."""

    def __init__(self, pattern: str, ranks: dict, rank_to_id, added_tokens: list, normalize):
        import tiktoken

        encoding = tiktoken.Encoding(
            "neox-metala-byte-level-bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={}
        )
        self._encode_piece = encoding._core_bpe.encode_ordinary
        self._rank_to_id = rank_to_id
        self._normalize = normalize
        self._added_ids = {token["content"]: token["id"] for token in added_tokens}
        raw = [t["content"] for t in added_tokens if not (t.get("normalized") and normalize is not None)]
        normalized = [t["content"] for t in added_tokens if t.get("normalized") and normalize is not None]
        self._raw_splitter = _literal_splitter(raw)
        self._normalized_splitter = _literal_splitter(normalized)

    def encode(self, text: str) -> list[int]:
        if self._raw_splitter is None and self._normalize is None:
            return self._bpe(text)
        ids: list[int] = []
        for piece, is_added in _split_on(self._raw_splitter, text):
            if is_added:
                ids.append(self._added_ids[piece])
                continue
            if self._normalize is not None:
                piece = self._normalize(piece)
            for sub_piece, sub_is_added in _split_on(self._normalized_splitter, piece):
                ids.extend([self._added_ids[sub_piece]] if sub_is_added else self._bpe(sub_piece))
        return ids

    def _bpe(self, text: str) -> list[int]:
        ranks = self._encode_piece(text)
        if self._rank_to_id is None:
            return ranks
        rank_to_id = self._rank_to_id
        return [rank_to_id[rank] for rank in ranks]


def _literal_splitter(literals: list[str]):
    """A regex matching any of the literals, leftmost-longest as HF's added-token trie does (None if none)."""
    if not literals:
        return None
    return re.compile("|".join(re.escape(text) for text in sorted(set(literals), key=len, reverse=True)))


def _split_on(splitter, text: str):
    """(piece, is_added_token) pairs covering text, empty pieces left out."""
    if splitter is None or splitter.search(text) is None:
        if text:
            yield text, False
        return
    position = 0
    for match in splitter.finditer(text):
        if match.start() > position:
            yield text[position : match.start()], False
        yield match.group(), True
        position = match.end()
    if position < len(text):
        yield text[position:], False
