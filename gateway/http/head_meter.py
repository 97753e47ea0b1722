"""Counting a request head as its bytes arrive, before any HTTP parser sees them. Pure: no IO.

A request head is the request line, the header lines and the empty line that ends them.
:class:`HeadMeter` is fed the raw bytes of a connection while the parser waits for a head;
it finds where the head ends, and raises :class:`HeadRefused` as soon as the request line,
the head or its number of lines passes a limit, so an oversized head costs the server one
scan of each chunk and never reaches httptools or h11.

Errors: :class:`HeadRefused` (``status`` 414 or 431, a stable ``code``, a safe ``detail``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The end of a head: an empty line, with CRLF or (leniently, as the parsers allow) bare LF.
_HEAD_END = re.compile(rb"\n\r?\n")
_BLANK = b"\r\n"


@dataclass(frozen=True)
class HeadLimits:
    """Limits on one request head (nginx's defaults are 8 KiB lines and 32 KiB heads)."""

    max_request_line: int
    max_head_bytes: int
    max_headers: int


class HeadRefused(Exception):
    """The head passed a limit; answer ``status`` with the ``code`` problem and close."""

    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail


class HeadMeter:
    """Measures one head at a time; :meth:`feed` it bytes, it says where the head ends."""

    def __init__(self, limits: HeadLimits) -> None:
        self.limits = limits
        self.reset()

    @property
    def started(self) -> bool:
        """Whether any byte of a head has arrived (a head timer should be running)."""
        return self.size > 0

    def reset(self) -> None:
        """Start measuring the next head."""
        self.size = 0
        self._line_size: int | None = 0  # None once the request line is complete
        self._line_cr = False  # the request line read so far ends in CR
        self._lines = 0
        self._tail = b""
        self._content = False  # past the empty lines a client may send before a request

    def feed(self, data: bytes) -> int | None:
        """Count ``data`` as head bytes; the offset just past the head's end, or None.

        After an end is found the meter is reset: the bytes after that offset belong to a
        body or to the next request, which the caller measures (or not) by parser state.
        Raises HeadRefused once a limit is passed, even before the head is complete.
        """
        skipped = 0
        if not self._content:
            skipped = len(data) - len(data.lstrip(_BLANK))
            self._content = skipped < len(data)
        body = data[skipped:]
        match = _HEAD_END.search(self._tail + body) if body else None
        end = None if match is None else skipped + match.end() - len(self._tail)
        head = data if end is None else data[:end]
        self._measure(
            head, body[: None if end is None else end - skipped], complete=end is not None
        )
        if end is None:
            self._tail = (self._tail + body)[-2:]
            return None
        self.reset()
        return end

    def _measure(self, head: bytes, content: bytes, *, complete: bool) -> None:
        self.size += len(head)
        if self._line_size is not None:
            newline = content.find(b"\n")
            line = content if newline < 0 else content[:newline]
            self._line_size += len(line)
            if line:
                self._line_cr = line.endswith(b"\r")
            # The CR of the line's CRLF is not part of it (method, target and version are):
            # a line that ends in CR so far may be one byte over, until its next byte says.
            if self._line_size - self._line_cr > self.limits.max_request_line:
                raise HeadRefused(
                    414,
                    "request-line-too-long",
                    "Request line too long",
                    f"the request line is limited to {self.limits.max_request_line} bytes",
                )
            if newline >= 0:
                self._line_size = None
        self._lines += content.count(b"\n")
        if self.size > self.limits.max_head_bytes:
            raise HeadRefused(
                431,
                "headers-too-large",
                "Request header fields too large",
                f"the request line and headers are limited to {self.limits.max_head_bytes} bytes",
            )
        # The request line and the final empty line are lines too; neither is a header.
        if self._lines - 1 - complete > self.limits.max_headers:
            raise HeadRefused(
                431,
                "too-many-headers",
                "Request header fields too large",
                f"requests are limited to {self.limits.max_headers} header fields",
            )
