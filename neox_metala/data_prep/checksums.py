"""Expected sha256 digests of the inputs (sha256sum's format), and checking each input against its digest.

Most damage shows up while a file is read (compressed.py), but one cut does not: a multi-frame .zst or
multi-member .gz whose frames end at line ends, cut exactly between two frames, is a valid smaller file. Only a
digest published with the corpus shows it (the Pile ships `SHA256SUMS.txt` beside its `*.jsonl.zst`). So every
input listed in a checksum file is hashed, in a worker process, before any of its documents is used. An input
whose digest differs counts as damaged, like a cut file, with one difference: nothing says where the damage is,
so none of its documents is used (ChecksumMismatch).

The checksum files are the ones named with --checksums; without that option, each input's own folder is searched
for the first of CHECKSUM_FILE_NAMES. A verified digest is kept in the input's manifest record, so a resumed run
does not hash the file again (manifest.check_resumable already refuses a file whose size changed).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass

from .compressed import DamagedInputError

CHECKSUM_FILE_NAMES = ("SHA256SUMS", "SHA256SUMS.txt", "sha256sums.txt")
# sha256sum: "<hex>  <name>" (text mode), "<hex> *<name>" (binary mode); a leading backslash means the name is
# escaped (\\, \n, \r). `sha256sum --tag` / `shasum --tag`: "SHA256 (<name>) = <hex>".
_PLAIN_LINE = re.compile(r"(\\?)([0-9a-fA-F]{64}) [ *]?(.+)")
_TAGGED_LINE = re.compile(r"(\\?)SHA256 \((.+)\) = ([0-9a-fA-F]{64})")
_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


@dataclass(frozen=True)
class Expected:
    sha256: str  # lower-case hex
    checksum_file: str  # the file that gives it (absolute path)


class ChecksumMismatch(DamagedInputError):
    """An input whose sha256 differs from the one its checksum file gives. The damage has no known position, so
    none of the file's documents is used (file_job.FileJob.finish drops any an earlier run committed)."""

    def __init__(self, path: str, expected: Expected, actual: str):
        super().__init__(
            f"sha256 differs from {expected.checksum_file} (it gives {expected.sha256}, the file has {actual}): the "
            "file is cut, damaged or another version, and nothing says where, so none of its documents is used; "
            "get a complete copy (or pass --no-checksums to prepare the file as it is)",
            None,
            path,
        )
        self.expected, self.actual = expected, actual

    def located(self, path: str) -> ChecksumMismatch:
        return ChecksumMismatch(path, self.expected, self.actual)


def sha256_file(path: str) -> str:
    """The file's sha256 (hex), read in chunks so memory stays small whatever its size. Runs in a worker."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def read_checksum_file(path: str) -> dict[str, str]:
    """Real path of every file listed in a sha256sum-format file -> its sha256 (lower case). Names are read
    relative to the checksum file's folder; blank lines and '#' comments are skipped."""
    folder = os.path.dirname(os.path.abspath(path))
    digests: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as stream:
        for number, line in enumerate(stream, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, digest = _parse_line(line)
            if name is None:
                raise ValueError(
                    f"{path}, line {number}: {line[:100]!r} is not a sha256sum line; expected "
                    "'<64 hex digits>  <file name>' as `sha256sum FILES > SHA256SUMS` writes it "
                    "(an MD5 or SHA-1 list will not do)"
                )
            full = os.path.realpath(os.path.join(folder, name))
            if digests.setdefault(full, digest) != digest:
                raise ValueError(
                    f"{path}, line {number}: {name} is listed a second time with another sha256; keep the right line"
                )
    return digests


def _parse_line(line: str) -> tuple[str | None, str | None]:
    plain, tagged = _PLAIN_LINE.fullmatch(line), _TAGGED_LINE.fullmatch(line)
    if plain:
        escaped, digest, name = plain.groups()
    elif tagged:
        escaped, name, digest = tagged.groups()
    else:
        return None, None
    if escaped:
        name = re.sub(r"\\(.)", lambda match: _ESCAPES.get(match.group(1), match.group(0)), name)
    return name, digest.lower()


def find_checksum_files(inputs: list[str]) -> list[str]:
    """The first of CHECKSUM_FILE_NAMES in each input's own folder, where there is one."""
    found = []
    for folder in sorted({os.path.dirname(path) for path in inputs}):
        found += [
            os.path.join(folder, name) for name in CHECKSUM_FILE_NAMES if os.path.isfile(os.path.join(folder, name))
        ][:1]
    return found


def expected_digests(inputs: list[str], explicit: list[str] | None, log=sys.stderr) -> dict[str, Expected]:
    """Real path of each input listed in a checksum file -> its Expected digest: from the `explicit` files
    (--checksums), else from those found beside the inputs. Logs every checksum file used, once."""
    if explicit:
        missing = [path for path in explicit if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(f"--checksums {' '.join(missing)}: no such file")
    sources = [os.path.abspath(path) for path in explicit] if explicit else find_checksum_files(inputs)
    wanted = {os.path.realpath(path) for path in inputs}
    expected: dict[str, Expected] = {}
    for source in sources:
        listed = read_checksum_file(source)
        for path, digest in listed.items():
            if path not in wanted:
                continue  # the corpus's other files (val/test next to train, say)
            earlier = expected.setdefault(path, Expected(digest, source))
            if earlier.sha256 != digest:
                raise ValueError(
                    f"{path}: {earlier.checksum_file} gives sha256 {earlier.sha256}, {source} gives "
                    f"{digest}; pass the right one with --checksums"
                )
        print(
            f"data_prep: checking inputs against {source} ({len(wanted & set(listed))} of the {len(listed)} "
            "files it lists are inputs of this run)",
            file=log,
        )
    if explicit and not expected:
        raise ValueError(
            f"--checksums {' '.join(explicit)}: none of the files listed is an input of this run (names "
            "are read relative to the checksum file's folder); pass the checksum file of these inputs"
        )
    return expected


def check_recorded(
    manifest_file: str, records: dict, files: list[str], mine: list[int], expected: dict[str, Expected] | None
) -> None:
    """Refuse to resume when a checksum file now gives another digest for an input this prefix verified: the
    input, or its checksum file, changed since the shards were made from it."""
    for file_index in mine if expected is not None else []:
        recorded = (records.get(str(file_index)) or {}).get("checksum") or {}
        now = expected.get(os.path.realpath(files[file_index]))
        if recorded.get("status") == "verified" and now is not None and now.sha256 != recorded["sha256"]:
            raise ValueError(
                f"{manifest_file}: {files[file_index]} was prepared when its sha256 was "
                f"{recorded['sha256']} ({recorded['checksum_file']}); {now.checksum_file} now gives "
                f"{now.sha256}: the file or its checksum changed, so prepare into a fresh "
                "--output-prefix (or pass --overwrite)"
            )


def _verified_as(record: dict | None, expected: Expected | None) -> bool:
    recorded = (record or {}).get("checksum") or {}
    return expected is not None and recorded.get("status") == "verified" and recorded["sha256"] == expected.sha256


class Verifier:
    """Hashes the pending inputs that a checksum file lists, in the worker processes, a few files ahead of the
    one being read, and says for each input whether its documents may be used.

    `expected` None means --no-checksums. `records` are the manifest's file records: an input verified by an
    earlier run is not hashed again."""

    def __init__(
        self,
        expected: dict[str, Expected] | None,
        files: list[str],
        pending: list[int],
        records: dict,
        lookahead: int,
        log=sys.stderr,
    ):
        self._expected, self._files, self._records = expected, files, records
        self._lookahead = max(1, lookahead)
        self._submit = None  # executor.submit, given by use()
        self._futures: dict = {}  # file index -> Future of its sha256, submitted and not yet checked
        verified_before = [i for i in pending if _verified_as(records.get(str(i)), self._expected_for(i))]
        self._to_hash = [i for i in pending if self._expected_for(i) is not None and i not in verified_before]
        if verified_before:
            print(
                f"data_prep: {len(verified_before)} input file(s) verified by an earlier run of this prefix (sha256 "
                "in the manifest): not hashed again",
                file=log,
            )
        if self._to_hash:
            print(
                f"data_prep: hashing {len(self._to_hash)} input file(s) before their documents are used "
                f"({min(self._lookahead, len(self._to_hash))} at a time, in the workers)",
                file=log,
            )

    def use(self, executor) -> None:
        self._submit = executor.submit

    def cancel(self) -> None:
        for future in self._futures.values():
            future.cancel()

    def _expected_for(self, file_index: int) -> Expected | None:
        return None if self._expected is None else self._expected.get(os.path.realpath(self._files[file_index]))

    def check(self, file_index: int) -> tuple[dict, ChecksumMismatch | None]:
        """The input's checksum entry for its manifest record, and the mismatch when its sha256 differs. Waits for
        its hash; the next inputs' hashes run meanwhile. Call in the order of `pending`."""
        while self._to_hash and len(self._futures) < self._lookahead:
            next_index = self._to_hash.pop(0)
            self._futures[next_index] = self._submit(sha256_file, self._files[next_index])
        previous = (self._records.get(str(file_index)) or {}).get("checksum")
        expected = self._expected_for(file_index)
        if self._expected is None:
            return previous or {"status": "not_checked"}, None
        if expected is None:  # an earlier run's verification still holds; else say it was not listed
            keep = (previous or {}).get("status") == "verified"
            return (previous if keep else {"status": "not_listed"}), None
        if file_index not in self._futures:
            return previous, None  # verified by an earlier run
        actual = self._futures.pop(file_index).result()
        entry = {"status": "verified", "sha256": actual, "checksum_file": expected.checksum_file}
        if actual == expected.sha256:
            return entry, None
        entry.update(status="differs", expected=expected.sha256)
        return entry, ChecksumMismatch(self._files[file_index], expected, actual)
