"""CSV text read in bounded pieces cut at line ends, each piece parsed on its own.

pyarrow's streaming CSV reader (``open_csv``) reads ahead of its consumer in a background
thread, up to 32 blocks (Arrow's ``MakeBackgroundGenerator``; the depth is no option): 32 MiB
of raw text at the default 1 MiB block, more with larger blocks, held whatever the consumer
does. Here the file is read only when the next batch is asked for: ``PIECE`` bytes, cut after
their last line end, parsed by ``read_csv`` on pyarrow's CPU threads (one ``BLOCK`` per
thread, so both cores parse), so one piece and its table are all that is held.

The cut is where pyarrow's own reader ends a row: CSV is parsed with ``newlines_in_values``
off (pyarrow's default, and the connector's), so every ``\\n`` and every ``\\r`` ends a row;
a ``\\r\\n`` cut between its two bytes leaves an empty line, which the parser skips. A line
longer than ``MAX_LINE`` is refused (``SourceRejected``) rather than read whole: a file
without line ends cannot make the gateway hold all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors._arrow import pa, pacsv
from connectors.errors import SourceRejected

PIECE = 4 << 20  # bytes of CSV text read and parsed per step
BLOCK = 1 << 20  # bytes per parser thread within a piece
MAX_LINE = 64 << 20  # the longest row read
PIECE_UNKNOWN = 1 << 62  # a length larger than any piece: the stream does not say its own


def pieces(stream: Any, size: int = PIECE, max_line: int = MAX_LINE) -> Iterator[memoryview]:
    """``stream``'s bytes in pieces of about ``size``, each ending at a line end (but the last,
    when the file does not end with one).

    Each piece is a view of one buffer, read into in place (``readinto``) and reused for the
    next piece: use it, or copy it, before asking for the next. No piece is copied, and no
    buffer allocated per piece (the copies and fresh pages cost more CPU than the parsing
    threads wait for).
    """
    # A stream that knows its length (a file) gets a buffer of that length when it is shorter
    # than a piece: a small file costs no 4 MiB allocation (fresh pages, zeroed, per stream).
    buffer = bytearray(min(size, _left(stream) + 1))
    held = 0  # bytes at the front of ``buffer``: a line not yet ended, carried over
    filled = False  # the last read filled ``buffer``
    while True:
        if held == len(buffer):  # one line fills the buffer: a larger one (views stay valid)
            buffer = buffer + bytearray(size)
        elif filled and len(buffer) < size:  # the stream outgrew its length: full pieces now
            buffer = buffer + bytearray(size - len(buffer))
        with memoryview(buffer) as view:
            got = stream.readinto(view[held:])
        if not got:
            break
        end = held + got
        filled = end == len(buffer)
        cut = max(buffer.rfind(b"\n", 0, end), buffer.rfind(b"\r", 0, end)) + 1
        if cut == 0:
            if end > max_line:
                raise SourceRejected(f"a CSV line is longer than {max_line >> 20} MiB")
            held = end
            continue
        with memoryview(buffer) as view:
            yield view[:cut]
        held = end - cut
        buffer[:held] = buffer[cut:end]  # the carried line to the front
    if held:
        with memoryview(buffer) as view:
            yield view[:held]


def _left(stream: Any) -> int:
    """The bytes ``stream`` says are left to read; a piece's worth and more when it cannot
    say (a pipe, a Python stream)."""
    try:
        left = int(stream.size()) - int(stream.tell())
    except (AttributeError, OSError, ValueError):
        return PIECE_UNKNOWN
    return max(left, 0)


def read(stream: Any, convert: Any, size: int = PIECE) -> Iterator[pa.Table]:
    """The rows of the CSV ``stream`` (a header line, then rows), one table per piece, in the
    columns and types ``convert`` (``pyarrow.csv.ConvertOptions``) asks for."""
    header: bytes | list[str] | None = None  # the header line, then its names
    for piece in pieces(stream, size):
        if header is None:  # the first piece with more than empty lines holds the header
            first = bytes(piece)  # a copy: the piece's buffer is read into again
            if not first.strip(b"\r\n"):
                continue
            header = _header_line(first)
            del first
            options = pacsv.ReadOptions(block_size=BLOCK)
        else:
            if isinstance(header, bytes):  # parsed only when a second piece needs it: a
                header = _names(header)  # small file is one piece, and one parse
            options = pacsv.ReadOptions(block_size=BLOCK, column_names=header)
        # read_csv copies every value out of the piece: the table outlives the buffer's reuse
        table = pacsv.read_csv(pa.py_buffer(piece), read_options=options, convert_options=convert)
        del piece  # the buffer is free for the next read while the table is used
        yield table


def _header_line(piece: bytes) -> bytes:
    """The first line that is not empty, with its line end."""
    start = len(piece) - len(piece.lstrip(b"\r\n"))
    ends = [i for i in (piece.find(b"\n", start), piece.find(b"\r", start)) if i >= 0]
    return piece[: min(ends) + 1] if ends else piece + b"\n"


def _names(line: bytes) -> list[str]:
    """The column names in a header line, parsed as pyarrow parses it."""
    names: list[str] = pacsv.read_csv(pa.py_buffer(line)).column_names
    return names
