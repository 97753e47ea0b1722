"""Content codings decoded in bounded steps, so a compression bomb is refused at the cap.

httpx decodes one network read (up to 64 KiB) at a time in one call, and gzip expands about
1000-fold: a single read can become ~64 MiB before anyone counts it. Here each coding is a
``zlib.decompressobj`` asked for at most ``STEP`` bytes per call (``max_length``), the rest
of its input kept in ``unconsumed_tail``, so the caller sees and counts at most ``STEP`` new
decoded bytes at a time, whatever the ratio.

``decoder(header)`` turns a ``Content-Encoding`` value into a chain of decoders (applied in
the reverse order of the header, as RFC 9110 section 8.4 lists them in the order applied);
``None`` for a coding the gateway does not read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

STEP = 64 * 1024  # decoded bytes handed on at most per step
ENCODINGS = frozenset({"identity", "gzip", "x-gzip", "deflate"})


class Decoder(Protocol):
    """Raw bytes in, decoded bytes out in pieces of at most ``STEP``."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``data`` (some may come with later data)."""
        ...

    def end(self) -> Iterator[bytes]:
        """What is left once the body has ended."""
        ...


class CorruptBody(ValueError):
    """The body is not valid in the coding its header names."""


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), STEP):
            yield data[start : start + STEP]

    def end(self) -> Iterator[bytes]:
        return iter(())


class _Zlib:
    """gzip (``wbits`` 16 + 15) or deflate: zlib-wrapped, or raw as some servers send it."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._started = False
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self._started and data and not self._gzip:
            self._started = True
            try:  # a zlib header? else raw deflate (what httpx accepts too)
                zlib.decompressobj().decompress(data[:2])
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        while data and not self._obj.eof:  # bytes after the stream are ignored, as httpx does
            out = self._step(data)
            data = self._obj.unconsumed_tail
            if out:
                yield out
            if len(out) == STEP and not data:
                yield from self._drain()

    def end(self) -> Iterator[bytes]:
        yield from self._drain()

    def _drain(self) -> Iterator[bytes]:
        while out := self._step(b""):
            yield out

    def _step(self, data: bytes) -> bytes:
        if self._obj.eof:
            return b""
        try:
            return self._obj.decompress(data, STEP)
        except zlib.error as exc:
            raise CorruptBody(str(exc)) from exc


class _Chain:
    """Codings applied one after the other: each piece goes through the next decoder."""

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(1, self._decoders[0].feed(data))

    def end(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            yield from self._through(index + 1, decoder.end())

    def _through(self, index: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        if index == len(self._decoders):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(index + 1, self._decoders[index].feed(piece))


def decoder(header: str | None) -> Decoder | None:
    """The decoder for a ``Content-Encoding`` header; None if a coding is not one we read."""
    codings = [c.strip() for c in (header or "identity").lower().split(",")]
    if any(c not in ENCODINGS for c in codings):
        return None
    chain: list[Decoder] = [_Zlib(c != "deflate") for c in reversed(codings) if c != "identity"]
    return _Chain(chain) if chain else _Identity()
