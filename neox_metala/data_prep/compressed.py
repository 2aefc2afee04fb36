"""Reading .zst and .gz inputs frame by frame, so that a cut or damaged file is an error, not a short read.

A zstd file is one or more frames (pzstd and `cat a.zst b.zst` make several; pzstd adds a skippable frame before
each), a gzip file one or more members. Each frame ends with a marker its decoder checks: zstd's last-block flag,
plus the content size and checksum where the frame carries them; gzip's CRC-32 and length trailer. So a file that
stops inside a frame, or whose data does not decode, is caught here at a known compressed byte offset, and every
byte decoded before that point is still handed out (the documents before the damage are valid).

What no reader can catch: a multi-frame file cut exactly between two frames. The frames before the cut are
complete, and neither format marks a last frame or counts the frames, so the rest reads as a smaller complete
file. jsonl inputs catch the common form of that cut (frames that do not end at line ends, as pzstd's fixed-size
frames): the last line then has no newline and is not complete JSON (`sources.iter_line_batches`). A cut between
frames that end at line ends (concatenated files, a writer that closes a frame every N documents) can only be
caught by comparing the file with its published checksum: checksums.py does, for every input a checksum file
lists (the Pile's SHA256SUMS.txt). The manifest records each file's frame count, and the summary points at
multi-frame inputs that no checksum verified, so that such files are visible.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

# Compressed bytes per decode call. The output of one call is this times the compression ratio (3-10 for text),
# so a small piece keeps memory bounded; 64 KiB decodes as fast as zstd's own stream reader (measured).
FEED_BYTES = 64 << 10


class DamagedInputError(ValueError):
    """An input file ends early or its data does not decode. `offset` is the file's (compressed) byte where
    reading stopped (its end, for a cut file), None where the reader cannot tell (a parquet row group)."""

    def __init__(self, detail: str, offset: int | None = None, path: str | None = None):
        super().__init__(detail)
        self.detail, self.offset, self.path = detail, offset, path

    def located(self, path: str) -> DamagedInputError:
        """This error with the file named."""
        return DamagedInputError(self.detail, self.offset, path)

    def __str__(self) -> str:
        where = f" at byte {self.offset}" if self.offset is not None else ""
        return f"{self.path or 'input'}: cut or damaged{where}: {self.detail}"


@dataclass(frozen=True)
class Codec:
    name: str  # "zstd" or "gzip"
    unit: str  # what one self-contained piece is called: zstd "frame", gzip "member"
    new_decoder: Callable  # () -> object with decompress(bytes), eof, unused_data (zlib's decompressobj API)
    errors: tuple  # what the decoder raises on data it cannot decode
    zero_padding: bool  # zero bytes between or after members are allowed (gzip, as gzip(1) and Python read it)


def zstd_codec() -> Codec:
    import zstandard

    # The Pile's files use long windows (2 GiB is zstd's maximum).
    decompressor = zstandard.ZstdDecompressor(max_window_size=2**31)
    return Codec("zstd", "frame", decompressor.decompressobj, (zstandard.ZstdError,), zero_padding=False)


def gzip_codec() -> Codec:
    # wbits 16 + 15: one gzip member, header and CRC-32/length trailer checked.
    return Codec("gzip", "member", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), (zlib.error,), zero_padding=True)


CODECS = {".zst": zstd_codec, ".gz": gzip_codec}


class CheckedFrames:
    """The uncompressed bytes of a .zst/.gz file; read() raises DamagedInputError where the file is cut or damaged.

    `raw` is the compressed file (read(n) -> bytes, bytes_read, close()). A frame's decoder is made when its first
    byte arrives and dropped when the decoder reports the frame's end, so at end of file a live decoder means the
    file stops inside a frame.
    """

    def __init__(self, raw, codec: Codec, feed_bytes: int = FEED_BYTES):
        self._raw, self._codec, self._feed_bytes = raw, codec, feed_bytes
        self._decoder = None  # the current frame's decoder; None between frames
        self._input = b""  # compressed bytes read but not yet decoded
        self._output = bytearray()  # decoded bytes not yet handed out
        self._consumed = 0  # compressed bytes decoded so far: the file offset of self._input[0]
        self.frame_start = 0  # file offset of the current (or last) frame
        self.frames = 0  # complete frames (skippable zstd frames included) or gzip members

    @property
    def bytes_read(self) -> int:
        return self._raw.bytes_read

    def close(self) -> None:
        self._raw.close()

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (everything left when size < 0); b"" only at a clean end of file. Decoding happens
        only once the bytes decoded before are handed out, so an error never swallows data decoded before it."""
        if size < 0:
            return b"".join(iter(lambda: self.read(self._feed_bytes * 64), b""))
        while not self._output and self._decode_some():
            pass
        chunk = bytes(self._output[:size])
        del self._output[:size]
        return chunk

    def _decode_some(self) -> bool:
        """Decode one piece of the file into self._output; False at a clean end of file."""
        if not self._input:
            self._input = self._raw.read(self._feed_bytes) or b""
            if not self._input:
                self._check_clean_end()
                return False
        if self._decoder is None:
            if self._codec.zero_padding:
                unpadded = self._input.lstrip(b"\0")
                self._consumed += len(self._input) - len(unpadded)
                self._input = unpadded
                if not unpadded:
                    return True
            self._decoder = self._codec.new_decoder()
            self.frame_start = self._consumed
        piece, self._input = self._input, b""
        try:
            self._output += self._decoder.decompress(piece)
        except self._codec.errors as error:
            end = self._consumed + len(piece)
            raise DamagedInputError(
                f"{self._describe_frame()} does not decode ({error}): the damage lies between byte "
                f"{self.frame_start} and byte {end}",
                offset=end,
            ) from None
        if self._decoder.eof:
            self._input = self._decoder.unused_data
            self._consumed += len(piece) - len(self._input)
            self._decoder = None
            self.frames += 1
        else:
            self._consumed += len(piece)
        return True

    def _describe_frame(self) -> str:
        return f"{self._codec.name} {self._codec.unit} {self.frames + 1} (it starts at byte {self.frame_start})"

    def _check_clean_end(self) -> None:
        if self._decoder is not None:
            raise DamagedInputError(
                f"the file ends inside {self._describe_frame()}: it was cut short (an interrupted download or copy?)",
                offset=self._consumed,
            )
        if self.frames == 0:
            raise DamagedInputError(
                f"the file holds no complete {self._codec.name} {self._codec.unit}: it is "
                "empty or not compressed with " + self._codec.name,
                offset=self._consumed,
            )
