#!/usr/bin/env python3
"""Build data/sample/: a few MB of public-domain English in the Pile's jsonl.zst layout, and its tokenizer.

Sources (Debian packages, fetched with `apt-get download` and unpacked with `dpkg -x`; no root needed):
  Gutenberg (PG-19)  King James Bible (bible-kjv-text, decoded by bible-kjv's `bible`), one document per chapter;
                     The Devil's Dictionary, Ambrose Bierce (dict-devil), one document per letter
  Wikipedia (en)     stand-in: The Jargon File 4.4.7 (dict-jargon), one document per entry
  Github             SQLite's public-domain C headers sqlite3.h + sqlite3ext.h (libsqlite3-dev), ~12 KB pieces
  DM Mathematics     generated here, like DeepMind's mathematics dataset: question/answer lines
All four are public domain (see data/sample/README.md). The documents are shuffled with a fixed seed; 5% go to
val.jsonl.zst, the rest alternate between train/00.jsonl.zst and train/01.jsonl.zst.

Usage: python data_prep/build_sample_corpus.py [--out data/sample] [--work /tmp/sample-corpus-debs]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import zstandard

PACKAGES = ("bible-kjv", "bible-kjv-text", "dict-devil", "dict-jargon", "libsqlite3-dev")
SEED = 1234
VAL_FRACTION = 0.05
CODE_PIECE_BYTES = 12_000
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def fetch_packages(work: Path) -> Path:
    """Download and unpack the Debian packages; returns the folder each one is unpacked under."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=work, check=True, capture_output=True)
    unpacked = work / "x"
    for package in PACKAGES:
        deb = sorted(work.glob(f"{package}_*.deb"))[-1]
        (unpacked / package).mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked / package)], check=True)
    return unpacked


def kjv_chapters(unpacked: Path) -> list[str]:
    program = unpacked / "bible-kjv/usr/bin/bible"
    data_dir = unpacked / "bible-kjv-text/usr/lib"
    listing = subprocess.run(
        [str(program), "-p", str(data_dir), "gen1:1-rev22:21"], check=True, capture_output=True, text=True
    ).stdout
    chapters, verses, heading = [], [], None
    for line in listing.splitlines():
        if re.fullmatch(r"(\d )?[A-Z][A-Za-z ]+ \d+", line):
            if heading:
                chapters.append(heading + "\n\n" + "\n".join(verses) + "\n")
            heading, verses = line, []
        elif re.match(r"\s+\d+ ", line):
            verses.append(line.strip())
        elif line.strip():
            verses[-1] += " " + line.strip()  # `bible` wraps long verses onto unindented lines
    chapters.append(heading + "\n\n" + "\n".join(verses) + "\n")
    return chapters


def dictd_entries(index_file: Path, dict_file: Path) -> list[str]:
    """The entries of a dictd dictionary in file order, its 00-database-* metadata left out."""

    def b64_number(text: str) -> int:
        value = 0
        for char in text:
            value = value * 64 + _B64.index(char)
        return value

    content = gzip.decompress(dict_file.read_bytes())
    spans = set()
    for line in index_file.read_text(encoding="utf-8").splitlines():
        headword, offset, length = line.split("\t")[:3]
        if not headword.startswith("00database"):
            spans.add((b64_number(offset), b64_number(length)))
    return [
        textwrap.dedent(content[start : start + length].decode("utf-8")).strip() + "\n"
        for start, length in sorted(spans)
    ]


def devil_letters(unpacked: Path) -> list[str]:
    entries = dictd_entries(
        unpacked / "dict-devil/usr/share/dictd/devil.index", unpacked / "dict-devil/usr/share/dictd/devil.dict.dz"
    )
    letters: dict[str, list[str]] = {}
    for entry in entries:
        letters.setdefault(entry[0].upper(), []).append(entry)
    return ["\n".join(group) for _, group in sorted(letters.items())]


def jargon_entries(unpacked: Path) -> list[str]:
    return dictd_entries(
        unpacked / "dict-jargon/usr/share/dictd/jargon.index", unpacked / "dict-jargon/usr/share/dictd/jargon.dict.dz"
    )


def sqlite_pieces(unpacked: Path) -> list[str]:
    """The headers cut at blank lines into pieces of about CODE_PIECE_BYTES (sqlite3.h alone is 600 KB)."""
    pieces = []
    for name in ("sqlite3.h", "sqlite3ext.h"):
        current = ""
        for block in (unpacked / "libsqlite3-dev/usr/include" / name).read_text(encoding="utf-8").split("\n\n"):
            current += block + "\n\n"
            if len(current) >= CODE_PIECE_BYTES:
                pieces.append(current)
                current = ""
        if current.strip():
            pieces.append(current)
    return pieces


def dm_mathematics(count: int, rng: random.Random) -> list[str]:
    """Documents of 40 question/answer line pairs from one module each, as in DeepMind's dataset."""

    def linear(r):
        x, a, b = r.randint(-20, 20), r.choice([i for i in range(-9, 10) if i]), r.randint(-50, 50)
        var = r.choice("abcdfghjklmnpqrstuvwxyz")
        return f"Solve {a}*{var} + {b} = {a * x + b} for {var}.".replace("+ -", "- "), str(x)

    def add_or_sub(r):
        p, q = round(r.uniform(-100, 100), r.choice([0, 1, 2])), round(r.uniform(-100, 100), r.choice([0, 1]))
        return f"What is {p} + {q}?".replace("+ -", "- "), f"{p + q:.10g}"

    def gcd(r):
        from math import gcd as greatest

        factor = r.randint(2, 60)
        p, q = factor * r.randint(2, 90), factor * r.randint(2, 90)
        return f"Calculate the greatest common divisor of {p} and {q}.", str(greatest(p, q))

    def differentiate(r):
        a, b, c, n = r.randint(2, 30), r.randint(-40, 40), r.randint(-99, 99), r.randint(2, 5)
        question = f"Differentiate {a}*x**{n} + {b}*x + {c} with respect to x.".replace("+ -", "- ")
        return question, f"{a * n}*x**{n - 1} + {b}".replace("+ -", "- ").replace("x**1 ", "x ")

    modules = (linear, add_or_sub, gcd, differentiate)
    documents = []
    for index in range(count):
        module = modules[index % len(modules)]
        documents.append("".join(f"{q}\n{a}\n" for q, a in (module(rng) for _ in range(40))))
    return documents


def write_jsonl_zst(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    path.write_bytes(zstandard.ZstdCompressor(level=19).compress(lines))


def build_corpus(unpacked: Path, out: Path) -> dict[str, int]:
    rng = random.Random(SEED)
    subsets = {
        "Gutenberg (PG-19)": kjv_chapters(unpacked) + devil_letters(unpacked),
        "Wikipedia (en)": jargon_entries(unpacked),
        "Github": sqlite_pieces(unpacked),
        "DM Mathematics": dm_mathematics(160, rng),
    }
    records = [
        {"text": text, "meta": {"pile_set_name": name}}
        for name, texts in subsets.items()
        for text in texts
        if text.strip()
    ]
    rng.shuffle(records)
    val_count = int(len(records) * VAL_FRACTION)
    write_jsonl_zst(out / "val.jsonl.zst", records[:val_count])
    train = records[val_count:]
    write_jsonl_zst(out / "train/00.jsonl.zst", train[0::2])
    write_jsonl_zst(out / "train/01.jsonl.zst", train[1::2])
    return {name: sum(1 for text in texts if text.strip()) for name, texts in subsets.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data/sample")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sample-corpus-debs"))
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--skip-tokenizer", action="store_true", help="only rebuild the jsonl.zst files")
    args = parser.parse_args(argv)
    counts = build_corpus(fetch_packages(args.work), args.out)
    print("documents per subset:", json.dumps(counts))
    if not args.skip_tokenizer:
        from neox_metala.data_prep.train_tokenizer import train_hf_byte_level_bpe

        train_files = sorted(str(p) for p in (args.out / "train").glob("*.jsonl.zst"))
        train_hf_byte_level_bpe(train_files, str(args.out / "tokenizer.json"), vocab_size=args.vocab_size)
        print(f"wrote {args.out / 'tokenizer.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
