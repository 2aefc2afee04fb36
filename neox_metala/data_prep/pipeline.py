"""`tokenize`: input files -> tokenized, sharded .bin/.idx plus a manifest; parallel, bounded memory, resumable.

The main process reads and decompresses inputs into batches and hands them to worker processes (spawned, so
they never inherit a parent's torch); at most `2 * workers + 1` batches are in flight, so memory stays bounded
however large the corpus. Results come back in input order, which makes the shards independent of the worker
count: the same corpus and settings give byte-identical shards.

A cut or damaged input file (compressed.py says what is detectable) keeps the documents before the damage and is
recorded as `incomplete` in the manifest; the run goes on with the other files and then raises
IncompleteInputError, unless `allow_partial_input` is set. Under `strict` the first damaged file stops the run.
An input listed in a checksum file is hashed (in the workers) before it is read; one whose sha256 differs is
damaged input too, and keeps no document (checksums.py).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import glob
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from neox_metala.data.tokenizers import load_tokenizer

from . import worker
from .checksums import Verifier, check_recorded, expected_digests
from .compressed import DamagedInputError
from .file_job import FINISHED_STATUSES, FileJob
from .indexed import token_dtype
from .manifest import check_resumable, load_manifest, manifest_path, new_manifest, save_manifest
from .progress import Progress
from .report import incomplete_files
from .sources import discover_inputs, iter_raw_batches, partition_files

PROBE_DOCUMENTS, PROBE_CHARACTERS = 32, 131072
MANY_SMALL_FILES = 1000  # past this many inputs averaging under SMALL_FILE_BYTES, suggest packing them
SMALL_FILE_BYTES = 8 << 20
COMPRESSION_RATIO_GUESS = 4  # uncompressed / compressed bytes of text under zstd or gzip


@dataclass
class TokenizeOptions:
    inputs: list
    output_prefix: str
    tokenizer_type: str
    vocab_file: str
    merge_file: str | None = None
    tokenizer_engine: str = "auto"
    json_key: str = "text"
    split_by: str | None = None
    append_eod: bool = True
    text_mode: str = "document"  # .txt inputs: "document" (a file is one document) or "lines"
    batch_bytes: int = 1 << 20
    parquet_rows: int = 1024
    shard_tokens: int = 1 << 30
    workers: int = field(default_factory=lambda: usable_cores())
    shard_index: int = 0
    num_shards: int = 1
    strict: bool = False
    allow_partial_input: bool = False  # cut or damaged inputs end the run normally (still recorded and reported)
    checksum_files: list | None = None  # sha256sum-format files; None: SHA256SUMS(.txt) beside each input
    use_checksums: bool = True  # False: no checksum file is looked for or used (--no-checksums)
    write_rejects: bool = False
    overwrite: bool = False
    progress: bool = True
    spot_check_every: int = 200


class IncompleteInputError(RuntimeError):
    """Input files were cut or damaged and partial input was not allowed; raised after the manifest is saved."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        damaged = incomplete_files(manifest)
        super().__init__(
            f"{len(damaged)} input file(s) are cut or damaged; the documents before the damage were prepared and "
            "counted (none of a file whose sha256 differs), the rest of each file is missing:\n"
            + "\n".join(f"  {line}" for line in damaged)
            + "\nreplace them with complete copies and prepare again (--overwrite, or a fresh --output-prefix), or "
            "rerun this command with --allow-partial-input to use what was read"
        )


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_tokenize(options: TokenizeOptions) -> dict:
    """Prepare (or finish preparing) this job's share of the inputs; returns the manifest."""
    files = discover_inputs(list(options.inputs))
    mine = partition_files(files, options.shard_index, options.num_shards)
    _warn_if_many_small_files([files[i] for i in mine])
    # Read before the tokenizer loads: a wrong checksum file fails at once.
    expected = expected_digests(files, options.checksum_files) if options.use_checksums else None
    os.makedirs(os.path.dirname(os.path.abspath(options.output_prefix)), exist_ok=True)
    manifest_file = manifest_path(options.output_prefix, options.shard_index, options.num_shards)
    with _exclusive(manifest_file):
        return _run_locked(options, files, mine, manifest_file, expected)


@contextlib.contextmanager
def _exclusive(manifest_file: str):
    """One process at a time per job: a second one (a requeued task while the first still runs) is refused."""
    with open(manifest_file + ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another process is preparing {manifest_file} right now; wait for it to end "
                "(or stop it) before running this job again"
            ) from None
        except OSError:
            pass  # a file system without flock (some network mounts): run unguarded, as before locks existed
        yield


def _warn_if_many_small_files(paths: list[str]) -> None:
    sizes = [os.path.getsize(path) for path in paths]
    if len(sizes) > MANY_SMALL_FILES and sum(sizes) / len(sizes) < SMALL_FILE_BYTES:
        print(
            f"data_prep: {len(sizes)} input files averaging {sum(sizes) / len(sizes) / 1e6:.1f} MB: shards never "
            "span input files, so this makes many small shards and manifest updates; pack the documents into "
            "fewer, larger jsonl(.zst) files first for speed",
            file=sys.stderr,
        )


def _run_locked(
    options: TokenizeOptions, files: list[str], mine: list[int], manifest_file: str, expected: dict | None
) -> dict:
    tokenizer = load_tokenizer(
        options.tokenizer_type, options.vocab_file, options.merge_file, engine=options.tokenizer_engine
    )
    settings = _settings(options, tokenizer)
    tokenizer_record = {
        "type": options.tokenizer_type,
        "vocab_file": os.path.abspath(options.vocab_file),
        "merge_file": options.merge_file and os.path.abspath(options.merge_file),
        "fingerprint": tokenizer.fingerprint,
        "vocab_size": tokenizer.vocab_size,
        "eod_id": tokenizer.eod_id,
        "pad_id": tokenizer.pad_id,
    }
    manifest = _open_manifest(manifest_file, options, settings, tokenizer_record, files)
    _remove_leftovers(manifest, options.output_prefix, mine)
    check_recorded(manifest_file, manifest["files"], files, mine, expected)
    # An incomplete file is final too: rereading it would meet the same damage.
    pending = [i for i in mine if manifest["files"].get(str(i), {}).get("status") not in FINISHED_STATUSES]
    engine = _probe_engine(tokenizer, files, pending, settings)
    manifest["tokenizer"]["engine"] = engine
    spec = dict(tokenizer_record, engine="hf" if engine == "hf" else options.tokenizer_engine)
    started = time.time()
    workers = _useful_workers(options.workers, [files[i] for i in pending], options.batch_bytes)
    verifier = Verifier(expected, files, pending, manifest["files"], lookahead=workers)
    with Progress(sum(os.path.getsize(files[i]) for i in pending), options.progress) as progress:
        _tokenize_files(files, pending, manifest, manifest_file, settings, spec, workers, options, progress, verifier)
    manifest["complete"] = True
    manifest["partial_input_allowed"] = options.allow_partial_input  # merge and validate read this
    manifest["last_run_seconds"] = round(time.time() - started, 3)
    save_manifest(manifest_file, manifest)
    if incomplete_files(manifest) and not options.allow_partial_input:
        raise IncompleteInputError(manifest)
    return manifest


def _useful_workers(workers: int, paths: list[str], batch_bytes: int) -> int:
    """No more worker processes than there are batches to share (about two each): starting a process costs
    more than encoding a small input in this one."""
    estimate = sum(os.path.getsize(p) * (COMPRESSION_RATIO_GUESS if p.endswith((".zst", ".gz")) else 1) for p in paths)
    return max(1, min(workers, estimate // (2 * batch_bytes)))


def _settings(options: TokenizeOptions, tokenizer) -> dict:
    if options.text_mode not in ("document", "lines"):
        raise ValueError(f"--text-mode {options.text_mode!r}: use 'document' or 'lines'")
    if options.shard_tokens < 1 or options.batch_bytes < 1 or options.parquet_rows < 1:
        raise ValueError("--shard-tokens, --batch-bytes and --parquet-rows must be positive")
    return {
        "json_key": options.json_key,
        "split_by": options.split_by,
        "append_eod": options.append_eod,
        "text_mode": options.text_mode,
        "batch_bytes": options.batch_bytes,
        "parquet_rows": options.parquet_rows,
        "shard_tokens": options.shard_tokens,
        "dtype": token_dtype(tokenizer.vocab_size).name,
        "strict": options.strict,
        "keep_rejects": options.write_rejects,
        "spot_check_every": options.spot_check_every,
    }


def _open_manifest(path: str, options, settings: dict, tokenizer_record: dict, files: list[str]) -> dict:
    if os.path.exists(path) and not options.overwrite:
        manifest = load_manifest(path)
        check_resumable(path, manifest, settings, tokenizer_record, files)
        return manifest
    if os.path.exists(path):
        _remove_outputs(options.output_prefix, load_manifest(path))
    manifest = new_manifest(settings, tokenizer_record, files, options.shard_index, options.num_shards)
    save_manifest(path, manifest)
    return manifest


def _remove_outputs(output_prefix: str, manifest: dict) -> None:
    folder = os.path.dirname(os.path.abspath(output_prefix))
    for shard in manifest["shards"]:
        for suffix in (".bin", ".idx"):
            path = os.path.join(folder, shard["name"] + suffix)
            if os.path.exists(path):
                os.remove(path)


def _remove_leftovers(manifest: dict, output_prefix: str, mine: list[int]) -> None:
    """Delete partial (.tmp) shards and shards renamed into place but never recorded, of this job's files."""
    committed = {shard["name"] for shard in manifest["shards"]}
    base = glob.escape(os.path.abspath(output_prefix))
    found = set()
    for file_index in mine:
        for pattern in (f"{base}-f{file_index:05d}-p*", f"{base}-*-f{file_index:05d}-p*"):
            found.update(glob.glob(pattern))
    for path in sorted(found):
        name = os.path.basename(path)
        suffix = next((s for s in (".bin.tmp", ".idx.tmp", ".bin", ".idx") if name.endswith(s)), None)
        if suffix is not None and (suffix.endswith(".tmp") or name[: -len(suffix)] not in committed):
            os.remove(path)


def _probe_engine(tokenizer, files: list[str], pending: list[int], settings: dict) -> str:
    """Compare the fast engine with HF on the first documents of the input; fall back to HF on any difference."""
    if tokenizer.engine != "tiktoken" or not pending:
        return tokenizer.engine
    batches, counter = iter_raw_batches(files[pending[0]], pending[0], 0, settings)  # the start: no skipping
    try:
        first = next(iter(batches), None)
    except DamagedInputError:
        first = None  # reported when the file is prepared
    finally:
        counter.close()
    probe_settings = dict(settings, strict=False, keep_rejects=False)
    texts = worker.parse_batch(first, probe_settings).texts[:PROBE_DOCUMENTS] if first else []
    for text in texts:
        text = text[:PROBE_CHARACTERS]
        if tokenizer.encode(text) != tokenizer.reference_encode(text):
            print(
                f"data_prep: the fast BPE engine differs from HF tokenizers on a document of {files[pending[0]]};"
                " using HF tokenizers",
                file=sys.stderr,
            )
            return "hf"
    return tokenizer.engine


def _tokenize_files(
    files, pending, manifest, manifest_file, settings, spec, workers, options, progress, verifier
) -> None:
    rejects_dir = options.output_prefix + ".rejects" if options.write_rejects else None
    job = None
    with _executor(workers, spec, settings) as executor:
        in_flight = collections.deque()
        verifier.use(executor)
        try:
            for item in _work_items(files, pending, manifest, settings, progress, verifier):
                in_flight.append(executor.submit(worker.encode_raw_batch, item[1]) if item[0] == "batch" else item)
                while len(in_flight) > 2 * workers + 1:
                    job = _handle(
                        in_flight.popleft(),
                        job,
                        files,
                        manifest,
                        manifest_file,
                        settings,
                        options,
                        rejects_dir,
                        progress,
                    )
            while in_flight:
                job = _handle(
                    in_flight.popleft(), job, files, manifest, manifest_file, settings, options, rejects_dir, progress
                )
        except BaseException:
            verifier.cancel()
            for future in in_flight:
                if isinstance(future, Future):
                    future.cancel()
            if job is not None:
                job.abandon()
            raise


def _work_items(files, pending, manifest, settings, progress, verifier):
    """("start", index, position, checksum entry), ("batch", RawBatch)..., ("end", index, end position, reading)
    for each pending file, in order; `reading` holds the file's frame count and, for a cut or damaged file, the
    error. A file whose sha256 differs is not read: no batch, end position 0."""
    for file_index in pending:
        start = manifest["files"].get(str(file_index), {}).get("resume_position", 0)
        checksum, mismatch = verifier.check(file_index)  # waits for this file's hash, if it has one
        yield ("start", file_index, start, checksum)
        if mismatch is not None:
            progress.advance_bytes(os.path.getsize(files[file_index]))
            yield ("end", file_index, 0, {"frames": None, "damage": mismatch})
            continue
        batches, source = iter_raw_batches(files[file_index], file_index, start, settings)
        reported, end, damage = 0, start, None
        try:
            for batch in batches:
                progress.advance_bytes(source.bytes_read - reported)
                reported, end = source.bytes_read, batch.end
                yield ("batch", batch)
        except DamagedInputError as error:
            damage = error  # the batches before it hold every whole document before the damage
        finally:
            source.close()
        progress.advance_bytes(os.path.getsize(files[file_index]) - reported)
        yield ("end", file_index, end, {"frames": source.frames, "damage": damage})


def _handle(item, job, files, manifest, manifest_file, settings, options, rejects_dir, progress):
    if isinstance(item, Future):
        try:
            encoded = item.result()
        except worker.BadInputError as error:
            raise worker.BadInputError(
                f"{job.path}: {error} (--strict stops at the first bad record; "
                "leave it out to count, skip and report them)"
            ) from None
        job.add_batch(encoded)
        progress.advance_work(int(encoded.lengths.size), int(encoded.tokens.size))
        return job
    if item[0] == "start":
        job = FileJob(
            manifest,
            manifest_file,
            item[1],
            files[item[1]],
            settings,
            os.path.abspath(options.output_prefix),
            rejects_dir,
        )
        job.record_checksum(item[3])
        return job
    damage = item[3]["damage"]
    if damage is not None and settings["strict"]:
        raise DamagedInputError(
            f"{damage.detail} (--strict stops at the first damaged input or bad record; leave "
            "it out to keep the documents before the damage and go on)",
            damage.offset,
            job.path,
        )
    job.finish(item[2], item[3]["frames"], damage)
    return None


class _InlineExecutor:
    """workers <= 1: encode in this process, same code path as the pool."""

    def __init__(self, spec: dict, settings: dict):
        worker.init_worker(spec, settings)

    def submit(self, function, argument) -> Future:
        future = Future()
        try:
            future.set_result(function(argument))
        except Exception as error:  # delivered through .result(), as a pool would
            future.set_exception(error)
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None


def _executor(workers: int, spec: dict, settings: dict):
    if workers <= 1:
        return _InlineExecutor(spec, settings)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread per worker process
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker.init_worker,
        initargs=(spec, settings),
    )
