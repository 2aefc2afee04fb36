"""Turning one input file's encoded batches into committed shards, with the bookkeeping that makes resume exact.

Each output stream (one, or one per subset with --split-by) fills a ShardWriter; a shard is committed after the
batch that takes it to `shard_tokens`, and at the end of the input file (shards never span files, so a file's
shards are the same whichever job of an array prepares it). A rerun reads the file again from the earliest batch
that some stream has not committed, and each stream skips the batches it already committed: no document is
written twice or lost. Bad-input counts and the rejects file are rolled back to that same position.

A file ends `done`, or `incomplete` when it was cut or damaged: its shards then hold the whole documents before
the damage, `damage` in its record says where, and its counts say `truncated_input: 1`. A file whose sha256
differs from its checksum file is damaged somewhere unknown: it keeps no document (`damage.kind` "checksum").
`checksum` in the record says how the file was checked (checksums.Verifier.check).
"""

from __future__ import annotations

import json
import os

import numpy as np

from .checksums import ChecksumMismatch
from .indexed import ShardWriter
from .manifest import save_manifest, shard_prefix, stream_slug
from .worker import BAD_KINDS

TRUNCATED_INPUT = "truncated_input"  # the file was cut or damaged (counted once per file, not per record)
COUNT_KEYS = (
    ("documents", "tokens", "blank_lines", "missing_split_key", "rejects_bytes") + BAD_KINDS + (TRUNCATED_INPUT,)
)
FINISHED_STATUSES = ("done", "incomplete")  # a rerun reads these files no more


def zero_counts() -> dict:
    return {key: 0 for key in COUNT_KEYS}


class FileJob:
    """The manifest record of input file `file_index` and the open shards of its streams."""

    def __init__(
        self,
        manifest: dict,
        manifest_file: str,
        file_index: int,
        path: str,
        settings: dict,
        output_prefix: str,
        rejects_dir: str | None,
    ):
        self.manifest, self.manifest_file = manifest, manifest_file
        self.file_index, self.path, self.settings = file_index, path, settings
        self.output_prefix = output_prefix
        self.record = manifest["files"].setdefault(
            str(file_index),
            {
                "path": path,
                "status": "in_progress",
                "resume_position": 0,
                "counts_at_resume": zero_counts(),
                "streams": {},
                "subset_names": {},
            },
        )
        self.counts = {**zero_counts(), **self.record["counts_at_resume"]}  # manifests older than a count lack it
        self.open: dict[str, tuple[ShardWriter, int]] = {}  # stream -> (writer, position of its first batch)
        self.snapshots = {self.record["resume_position"]: dict(self.counts)}  # batch end -> counts there
        self.rejects = self._open_rejects(rejects_dir)
        self.committed_any = False

    @property
    def resume_position(self) -> int:
        return self.record["resume_position"]

    def _open_rejects(self, rejects_dir: str | None):
        if rejects_dir is None:
            return None
        os.makedirs(rejects_dir, exist_ok=True)
        path = os.path.join(rejects_dir, f"f{self.file_index:05d}.jsonl")
        stream = open(path, "ab")
        stream.truncate(self.counts["rejects_bytes"])  # drop what a killed run wrote past the resume point
        stream.seek(self.counts["rejects_bytes"])
        return stream

    def record_checksum(self, entry: dict) -> None:
        """Record how the file was checked against its checksum file. A new verification is saved at once, so that
        a run killed before the file's first shard does not hash the file again."""
        fresh = entry.get("status") == "verified" and self.record.get("checksum") != entry
        self.record["checksum"] = entry
        if fresh:
            save_manifest(self.manifest_file, self.manifest)

    def add_batch(self, encoded) -> None:
        self.counts["tokens"] += int(encoded.tokens.size)
        for key, value in encoded.counts.items():
            self.counts[key] += value
        self._write_rejects(encoded.rejects)
        for stream, tokens, lengths in self._route(encoded):
            state = self.record["streams"].setdefault(stream, {"parts": 0, "committed_through": 0})
            if encoded.start < state["committed_through"]:
                continue  # committed before a crash: this rerun only recounts it
            if stream not in self.open:
                prefix = shard_prefix(self.output_prefix, stream, self.file_index, state["parts"])
                self.open[stream] = (ShardWriter(prefix, np.dtype(self.settings["dtype"])), encoded.start)
            self.open[stream][0].add(tokens, lengths)
        self.snapshots[encoded.end] = dict(self.counts)
        full = [s for s, (writer, _) in self.open.items() if writer.tokens >= self.settings["shard_tokens"]]
        for stream in full:
            self._commit(stream, encoded.end)
        if full:
            self._save(encoded.end)

    def finish(self, end_position: int, frames: int | None = None, damage=None) -> None:
        """End of the input file (or of what could be read of it, with `damage` the DamagedInputError): commit
        every open shard, mark the file done or incomplete. `frames`: zstd frames or gzip members, None if plain.
        A ChecksumMismatch keeps nothing of the file, not even what an earlier run committed before checking."""
        dropped = self._drop_committed() if isinstance(damage, ChecksumMismatch) else []
        for stream in sorted(self.open):
            self._commit(stream, end_position)
        if frames is not None:
            self.record["frames"] = frames
        if damage is not None:
            self.counts[TRUNCATED_INPUT] += 1
            self.record["damage"] = {
                "offset": damage.offset,
                "detail": damage.detail,
                "kept_through_position": end_position,
            }
            if isinstance(damage, ChecksumMismatch):
                self.record["damage"]["kind"] = "checksum"
        self.record["status"] = "done" if damage is None else "incomplete"
        self.snapshots[end_position] = dict(self.counts)
        self._save(end_position)
        self._delete_shards(dropped)  # after the save: a kill in between leaves files that the next run clears
        if self.rejects is not None:
            self.rejects.close()

    def _drop_committed(self) -> list[str]:
        """Forget the shards that an earlier run, which did not check the file, committed from it, and reset its
        counts and rejects; returns the shards' names."""
        dropped = [shard["name"] for shard in self.manifest["shards"] if shard["file_index"] == self.file_index]
        self.manifest["shards"] = [s for s in self.manifest["shards"] if s["file_index"] != self.file_index]
        self.record["streams"], self.record["subset_names"] = {}, {}
        self.counts = zero_counts()
        if self.rejects is not None:
            self.rejects.truncate(0)
        return dropped

    def _delete_shards(self, names: list[str]) -> None:
        folder = os.path.dirname(self.output_prefix)
        for path in (os.path.join(folder, name + suffix) for name in names for suffix in (".bin", ".idx")):
            if os.path.exists(path):
                os.remove(path)

    def abandon(self) -> None:
        for writer, _ in self.open.values():
            writer.abandon()
        if self.rejects is not None:
            self.rejects.close()

    def _route(self, encoded):
        """(stream, tokens, lengths) per output stream present in the batch."""
        if not self.settings["split_by"]:
            return [("", encoded.tokens, encoded.lengths)] if encoded.lengths.size else []
        slugs = [stream_slug(value) for value in encoded.split_values]
        for value, slug in zip(encoded.split_values, slugs):
            self.record["subset_names"].setdefault(slug, value)
        names = sorted(set(slugs))
        codes = np.fromiter((names.index(slug) for slug in slugs), dtype=np.int32, count=len(slugs))
        token_codes = np.repeat(codes, encoded.lengths)  # [tokens] the stream of each token's document
        return [
            (name, encoded.tokens[token_codes == code], encoded.lengths[codes == code])
            for code, name in enumerate(names)
        ]

    def _write_rejects(self, rejects: list) -> None:
        if self.rejects is None or not rejects:
            return
        for position, reason, line in rejects:
            entry = {"file": self.path, "position": position, "reason": reason, "line": line}
            self.rejects.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        self.counts["rejects_bytes"] = self.rejects.tell()

    def _commit(self, stream: str, end_position: int) -> None:
        writer, opened_at = self.open.pop(stream)
        shard = writer.commit()
        state = self.record["streams"][stream]
        shard.update(
            {
                "name": os.path.basename(writer.prefix),
                "stream": stream,
                "file_index": self.file_index,
                "part": state["parts"],
                "positions": [opened_at, end_position],
            }
        )
        self.manifest["shards"].append(shard)
        state["parts"] += 1
        state["committed_through"] = end_position
        self.committed_any = True

    def _save(self, current_position: int) -> None:
        """Record, durably, the earliest position a rerun must read from and the counts at that position."""
        resume = min((opened_at for _, opened_at in self.open.values()), default=current_position)
        self.record["resume_position"] = resume
        self.record["counts_at_resume"] = self.snapshots[resume]
        self.snapshots = {p: c for p, c in self.snapshots.items() if p >= resume}
        if self.rejects is not None:
            self.rejects.flush()
            os.fsync(self.rejects.fileno())
        save_manifest(self.manifest_file, self.manifest)
