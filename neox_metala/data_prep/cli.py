"""`neox-metala-prep` / `python -m neox_metala.data_prep`: tokenize, merge, list, inspect (count), validate,
train-tokenizer, sample. See data_prep/README.md for the Pile walk-through and the Slurm array job."""

from __future__ import annotations

import argparse
import json
import re
import sys

from neox_metala.data.tokenizers import ENGINES, TOKENIZER_TYPES

_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_size(text: str, binary: bool = True) -> int:
    """'4M' -> 4 MiB (binary) or 4,000,000 (decimal, for token counts); plain numbers as they are."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 512, 64K, 4M or 1G")
    return int(float(match.group(1)) * (1024 if binary else 1000) ** _POWERS[match.group(2).upper()])


def _tokenizer_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--tokenizer-type", choices=TOKENIZER_TYPES, required=required)
    parser.add_argument(
        "--vocab-file", required=required, help="HF tokenizer JSON, sentencepiece .model, or GPT-2 vocab.json"
    )
    parser.add_argument("--merge-file", help="GPT-2 merges.txt (GPT2BPETokenizer only)")


def _add_tokenize_command(commands) -> None:
    tok = commands.add_parser("tokenize", help="input files -> .bin/.idx shards + manifest (resumable)")
    tok.add_argument(
        "--input", nargs="+", required=True, help="files, globs or folders (jsonl[.zst|.gz], txt, parquet)"
    )
    tok.add_argument("--output-prefix", required=True, help="shards are <prefix>[-<subset>]-fNNNNN-pNNNN.bin/.idx")
    _tokenizer_arguments(tok, required=True)
    tok.add_argument(
        "--tokenizer-engine",
        choices=ENGINES,
        default="auto",
        help="BPE engine for HF byte-level BPE: auto = tiktoken where exact, else HF",
    )
    tok.add_argument("--json-key", default="text", help="key (dotted path) or parquet column of the text")
    tok.add_argument("--split-by", help="one output stream per value of this key, e.g. pile_set_name")
    tok.add_argument("--no-append-eod", dest="append_eod", action="store_false")
    tok.add_argument(
        "--text-mode",
        choices=("document", "lines"),
        default="document",
        help=".txt inputs: each file is one document, or each line is one",
    )
    tok.add_argument(
        "--shard-tokens",
        type=lambda s: parse_size(s, binary=False),
        default=parse_size("1G", False),
        help="close a shard once it holds this many tokens (default 1G; 2 bytes each for uint16)",
    )
    tok.add_argument(
        "--batch-bytes",
        type=parse_size,
        default=parse_size("1M"),
        help="uncompressed input per worker task (default 1M)",
    )
    tok.add_argument("--parquet-rows", type=int, default=1024, help="parquet rows per worker task")
    tok.add_argument("--workers", type=int, help="worker processes (default: the usable cores)")
    tok.add_argument("--shard-index", type=int, default=0, help="this job's index in an array of --num-shards")
    tok.add_argument("--num-shards", type=int, default=1, help="jobs that split the input files between them")
    damage = tok.add_mutually_exclusive_group()
    damage.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad record or cut/damaged input file instead of counting it",
    )
    damage.add_argument(
        "--allow-partial-input",
        action="store_true",
        help="exit 0 although input files were cut or damaged (their documents before the damage "
        "are kept; the files are still reported and marked incomplete in the manifest)",
    )
    sums = tok.add_mutually_exclusive_group()
    sums.add_argument(
        "--checksums",
        nargs="+",
        metavar="FILE",
        help="sha256sum-format files ('<hex>  <name>' lines, names relative to the file's folder): "
        "each input listed is hashed before use, and one that differs is damaged input "
        "(default: SHA256SUMS, SHA256SUMS.txt or sha256sums.txt in each input's folder)",
    )
    sums.add_argument(
        "--no-checksums", dest="use_checksums", action="store_false", help="do not look for or use checksum files"
    )
    tok.add_argument(
        "--allow-unverified-frames",
        action="store_true",
        help="exit 0 although multi-frame .zst / multi-member .gz inputs were not verified by a checksum (a copy "
        "cut exactly between two frames reads as complete; by default such a run exits 1 naming the files; "
        "--allow-partial-input implies this)",
    )
    tok.add_argument("--rejects", action="store_true", help="write bad records to <prefix>.rejects/fNNNNN.jsonl")
    tok.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    tok.add_argument("--merge", action="store_true", help="merge the shards per stream when done")
    tok.add_argument("--no-progress", dest="progress", action="store_false")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neox-metala-prep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_tokenize_command(commands)

    mrg = commands.add_parser("merge", help="concatenate each stream's shards into one dataset")
    mrg.add_argument("--prefix", required=True, help="the --output-prefix given to tokenize")
    mrg.add_argument("--output-prefix", help="default: the same prefix")

    lst = commands.add_parser("list", help="print train_data_paths / train_data_weights for a config")
    lst.add_argument("--prefix", required=True)
    lst.add_argument("--format", choices=("yaml", "json"), default="yaml")

    for name in ("inspect", "count"):
        ins = commands.add_parser(name, help="tokens per shard and stream; decode a few documents")
        ins.add_argument("--prefix", required=True)
        ins.add_argument("--samples", type=int, default=2 if name == "inspect" else 0)
        ins.add_argument("--json", action="store_true", help="print the counts as JSON")

    val = commands.add_parser("validate", help="check every shard's .idx against its .bin (exit 1 on problems)")
    target = val.add_mutually_exclusive_group(required=True)
    target.add_argument("--prefix", help="the --output-prefix given to tokenize (checks against the manifest)")
    target.add_argument("--dataset", nargs="+", help="dataset prefixes (<name> for <name>.bin/.idx), no manifest")
    val.add_argument("--vocab-size", type=int, help="with --dataset: also check every id is below this")
    val.add_argument("--skip-token-range", action="store_true", help="do not scan .bin for ids >= vocab_size")

    trn = commands.add_parser("train-tokenizer", help="train sentencepiece (bpe/unigram) or an HF byte-level BPE")
    trn.add_argument("--input", nargs="+", required=True)
    trn.add_argument("--kind", choices=("spm-bpe", "spm-unigram", "hf-bpe"), default="spm-bpe")
    trn.add_argument("--output", required=True, help="model prefix (spm: <output>.model) or JSON path (hf-bpe)")
    trn.add_argument("--vocab-size", type=int, default=32000)
    trn.add_argument("--special-tokens", nargs="*", default=[], help="extra tokens besides EOD and padding")
    trn.add_argument("--json-key", default="text")
    trn.add_argument("--sample-bytes", type=parse_size, default=parse_size("100M"), help="text to train on")
    trn.add_argument("--character-coverage", type=float, default=0.9999)

    smp = commands.add_parser("sample", help="tokenize the bundled sample corpus (no-op when already done)")
    smp.add_argument("--out-dir", help="default: data/sample/tokenized")
    return parser


def _run_tokenize(args) -> int:
    from .pipeline import IncompleteInputError, TokenizeOptions, run_tokenize
    from .report import UNVERIFIED_FRAMES, print_summary, unverified_multi_frame

    options = TokenizeOptions(
        inputs=args.input,
        output_prefix=args.output_prefix,
        tokenizer_type=args.tokenizer_type,
        vocab_file=args.vocab_file,
        merge_file=args.merge_file,
        tokenizer_engine=args.tokenizer_engine,
        json_key=args.json_key,
        split_by=args.split_by,
        append_eod=args.append_eod,
        text_mode=args.text_mode,
        batch_bytes=args.batch_bytes,
        parquet_rows=args.parquet_rows,
        shard_tokens=args.shard_tokens,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
        strict=args.strict,
        allow_partial_input=args.allow_partial_input,
        write_rejects=args.rejects,
        overwrite=args.overwrite,
        progress=args.progress,
        checksum_files=args.checksums,
        use_checksums=args.use_checksums,
    )
    if args.workers is not None:
        options.workers = args.workers
    try:
        manifest = run_tokenize(options)
    except IncompleteInputError as error:
        print_summary(error.manifest, options.output_prefix if args.rejects else None)
        print(f"neox-metala-prep tokenize: error: {error}", file=sys.stderr)
        return 1  # the run finished (nothing to resume) but its output lacks part of the input
    print_summary(manifest, options.output_prefix if args.rejects else None)
    unverified = unverified_multi_frame(manifest["files"].values())
    if unverified and not (args.allow_unverified_frames or args.allow_partial_input):
        print(
            f"neox-metala-prep tokenize: error: {UNVERIFIED_FRAMES.format(count=len(unverified))}: "
            f"{', '.join(unverified)}; or pass --allow-unverified-frames to accept them as they are",
            file=sys.stderr,
        )
        return 1  # the shards are written and complete for what was read; the inputs may not be
    if args.merge:
        return _run_merge(argparse.Namespace(prefix=args.output_prefix, output_prefix=None))
    return 0


def _run_merge(args) -> int:
    from .tools import merge

    for dataset in merge(args.prefix, args.output_prefix):
        print(
            f"{dataset['prefix']}: {dataset['documents']:,} documents, {dataset['tokens']:,} tokens "
            f"from {dataset['shards']} shards"
        )
    return 0


def _run_list(args) -> int:
    from .report import checksum_totals
    from .tools import dataset_list, input_records

    listing = dataset_list(args.prefix)
    # stderr: stdout stays a listing a config can take as it is
    print(f"list: {checksum_totals(input_records(args.prefix))}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(listing, indent=1))
    else:
        for key, values in listing.items():
            print(f"{key}: {json.dumps(values)}")
    return 0


def _run_inspect(args) -> int:
    from .report import print_counts
    from .tools import count, decode_samples

    counts = count(args.prefix)
    if args.json:
        print(json.dumps(counts, indent=1))
    else:
        print_counts(counts)
    for number, text in enumerate(decode_samples(args.prefix, args.samples) if args.samples else []):
        print(f"--- document {number} ---\n{text}")
    return 0


def _run_validate(args) -> int:
    from .report import checksum_line, checksum_totals
    from .tools import input_records, validate, validate_prefixes

    if args.prefix:
        problems = validate(args.prefix, check_token_range=not args.skip_token_range)
        records = input_records(args.prefix)
        for record in records:
            print(f"input {checksum_line(record)}")
        print(f"inputs: {checksum_totals(records)}")
    else:
        problems = validate_prefixes(args.dataset, None if args.skip_token_range else args.vocab_size)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("validate: " + (f"{len(problems)} problems" if problems else "every shard is consistent"))
    return 1 if problems else 0


def _run_train_tokenizer(args) -> int:
    from .train_tokenizer import train_hf_byte_level_bpe, train_sentencepiece

    if args.kind == "hf-bpe":
        path = train_hf_byte_level_bpe(
            args.input, args.output, args.vocab_size, tuple(args.special_tokens), args.json_key, args.sample_bytes
        )
    else:
        path = train_sentencepiece(
            args.input,
            args.output,
            args.vocab_size,
            args.kind.split("-")[1],
            tuple(args.special_tokens),
            args.json_key,
            args.sample_bytes,
            args.character_coverage,
        )
    print(f"wrote {path}")
    return 0


def _run_sample(args) -> int:
    from .sample import prepare_sample

    print(json.dumps(prepare_sample(args.out_dir, progress=True), indent=1))
    return 0


COMMANDS = {
    "tokenize": _run_tokenize,
    "merge": _run_merge,
    "list": _run_list,
    "inspect": _run_inspect,
    "count": _run_inspect,
    "validate": _run_validate,
    "train-tokenizer": _run_train_tokenizer,
    "sample": _run_sample,
}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError, EOFError) as error:
        print(f"neox-metala-prep {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
