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


def pieces(stream: Any, size: int = PIECE, max_line: int = MAX_LINE) -> Iterator[bytes]:
    """``stream``'s bytes in pieces of about ``size``, each ending at a line end (but the last,
    when the file does not end with one)."""
    carry = b""
    while data := stream.read(size):
        data = carry + data if carry else data
        cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if cut == 0:
            if len(data) > max_line:
                raise SourceRejected(f"a CSV line is longer than {max_line >> 20} MiB")
            carry = data
            continue
        carry = data[cut:]
        yield data if cut == len(data) else data[:cut]
    if carry:
        yield carry


def read(stream: Any, convert: Any, size: int = PIECE) -> Iterator[pa.Table]:
    """The rows of the CSV ``stream`` (a header line, then rows), one table per piece, in the
    columns and types ``convert`` (``pyarrow.csv.ConvertOptions``) asks for."""
    header: bytes | list[str] | None = None  # the header line, then its names
    for piece in pieces(stream, size):
        buffer = pa.py_buffer(piece)
        if header is None:  # the first piece with more than empty lines holds the header
            if not piece.strip(b"\r\n"):
                continue
            header = _header_line(piece)
            options = pacsv.ReadOptions(block_size=BLOCK)
        else:
            if isinstance(header, bytes):  # parsed only when a second piece needs it: a
                header = _names(header)  # small file is one piece, and one parse
            options = pacsv.ReadOptions(block_size=BLOCK, column_names=header)
        yield pacsv.read_csv(buffer, read_options=options, convert_options=convert)


def _header_line(piece: bytes) -> bytes:
    """The first line that is not empty, with its line end."""
    start = len(piece) - len(piece.lstrip(b"\r\n"))
    ends = [i for i in (piece.find(b"\n", start), piece.find(b"\r", start)) if i >= 0]
    return piece[: min(ends) + 1] if ends else piece + b"\n"


def _names(line: bytes) -> list[str]:
    """The column names in a header line, parsed as pyarrow parses it."""
    names: list[str] = pacsv.read_csv(pa.py_buffer(line)).column_names
    return names
