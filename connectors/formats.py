"""Write a stream of record batches out as JSON lines, CSV, Parquet or Arrow IPC, chunk by chunk.

Each batch is encoded and handed on as bytes at once, so memory stays at about one batch
whatever the size of the result.

JSON lines are compact (``{"id":1,"name":"a"}``), UTF-8, one object per row: timestamps and
dates in ISO 8601, decimals as strings, binary as base64, and a float that is not finite
(NaN, infinity) as ``null`` (JSON has no such numbers).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson

from connectors._arrow import ipc, pa, pacsv, pq
from connectors.errors import ConnectorError


class Format(StrEnum):
    """Output formats and their media types (``Format.media_type``)."""

    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"
    ARROW = "arrow"

    @property
    def media_type(self) -> str:
        """The Content-Type for this format."""
        return _MEDIA[self]


_MEDIA = {
    Format.JSONL: "application/jsonl",
    Format.CSV: "text/csv",
    Format.PARQUET: "application/vnd.apache.parquet",
    Format.ARROW: "application/vnd.apache.arrow.stream",
}


class Chunks:
    """A write-only file object whose contents are taken out after every batch."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


async def encode(
    batches: AsyncIterator[pa.RecordBatch],
    fmt: Format,
    schema: pa.Schema,
    *,
    counted: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """The bytes of ``batches`` in ``fmt``; ``schema`` is written even for an empty result.

    ``counted`` is told each batch's rows when the bytes holding them are handed out (for
    Parquet, whose writer holds rows back, when the batch is written): a batch encoded ahead
    but never handed out is not counted.
    """
    count = counted or _ignore
    if fmt is Format.JSONL:
        async for batch in batches:
            chunk = _jsonl(batch)
            count(batch.num_rows)
            yield chunk
        return
    if fmt in _NATIVE and not _has_dictionary(schema):
        head, each, tail = _NATIVE[fmt]
        if fmt is Format.CSV:
            first = head(schema)
            async for encoded, rows in _threaded(batches, _csv_buffer):
                chunk, first = first + encoded.to_pybytes(), b""
                count(rows)
                if chunk:
                    yield chunk
            if first:
                yield first
            return
        async for chunk in _framed(batches, head(schema), each, tail, count):
            yield chunk
        return
    sink = Chunks()
    writer = _WRITERS[fmt](sink, schema)
    async for batch in batches:
        writer.write_batch(batch)
        count(batch.num_rows)
        chunk = sink.take()
        if chunk:
            yield chunk
    writer.close()
    tail = sink.take()
    if tail:
        yield tail


def _ignore(_rows: int) -> None:
    return None


async def _framed(
    batches: AsyncIterator[pa.RecordBatch],
    head: bytes,
    each: Callable[[pa.RecordBatch], bytes],
    tail: bytes,
    count: Callable[[int], None],
) -> AsyncIterator[bytes]:
    """``head``, each batch's bytes, ``tail``: the head sent with the first batch."""
    async for batch in batches:
        chunk, head = head + each(batch), b""
        count(batch.num_rows)
        if chunk:
            yield chunk
    if head + tail:
        yield head + tail


async def _threaded(
    batches: AsyncIterator[pa.RecordBatch],
    each: Callable[[pa.RecordBatch], pa.Buffer],
) -> AsyncGenerator[tuple[pa.Buffer, int], None]:
    """(bytes, rows) of each batch, encoded in a worker thread while the bytes of the one
    before are sent: pyarrow's CSV writer is the slowest step of a CSV stream, and on the
    event loop it and the sending would wait for each other. One batch is encoded ahead,
    never more; a source failure comes after the bytes already encoded.

    One thread of its own per stream: on whichever worker of the shared pool was free, each
    thread's allocator kept its own cache, and the peak RSS rose by 16-35 MiB (measured on
    300 MB in one process); with one thread it is as before.
    """
    pending: tuple[asyncio.Future[pa.Buffer], int] | None = None
    loop = asyncio.get_running_loop()
    encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluis-encode")
    try:
        while True:
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                break
            except ConnectorError:
                if pending is not None:
                    yield await pending[0], pending[1]
                    pending = None
                raise
            ahead = loop.run_in_executor(encoder, each, batch), batch.num_rows
            if pending is not None:
                yield await pending[0], pending[1]
            pending = ahead
        if pending is not None:
            yield await pending[0], pending[1]
            pending = None
    finally:
        if pending is not None:  # a thread cannot be cancelled: let it finish
            await asyncio.gather(pending[0], return_exceptions=True)
        encoder.shutdown(wait=False)


# CSV and Arrow IPC without a Python file object: pyarrow's writers call a Python sink for
# every buffer they write (an IPC batch is a dozen writes, a CSV batch one per 1,024 rows),
# each a bytes object of its own; encoding each batch into Arrow's own buffer and taking it
# out once costs a tenth of that for IPC (measured: 0.06 against 0.6 CPU seconds for 320 MiB).
# The bytes are the writers' own (``RecordBatch.serialize`` is the stream writer's message;
# ``tests/connectors/test_formats.py`` compares them). Dictionary columns need the stream
# writer's dictionary messages: such schemas go through the writers.
_CSV_WRITE = pacsv.WriteOptions(include_header=False, batch_size=64 * 1024)
_IPC_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the stream writer's end-of-stream marker


def _csv_header(schema: pa.Schema) -> bytes:
    return _csv_rows(schema.empty_table(), pacsv.WriteOptions(include_header=True))


def _csv_rows(rows: pa.RecordBatch | pa.Table, options: Any = _CSV_WRITE) -> bytes:
    return bytes(_csv_buffer(rows, options).to_pybytes())


def _csv_buffer(rows: pa.RecordBatch | pa.Table, options: Any = _CSV_WRITE) -> pa.Buffer:
    """The CSV text of ``rows``, in Arrow's memory (the bytes are made on the event loop)."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink, write_options=options)
    return sink.getvalue()


def _ipc_message(batch: pa.RecordBatch) -> bytes:
    return bytes(batch.serialize().to_pybytes())


def _ipc_schema(schema: pa.Schema) -> bytes:
    return bytes(schema.serialize().to_pybytes())


_NATIVE: dict[
    Format, tuple[Callable[[pa.Schema], bytes], Callable[[pa.RecordBatch], bytes], bytes]
] = {
    Format.CSV: (_csv_header, _csv_rows, b""),
    Format.ARROW: (_ipc_schema, _ipc_message, _IPC_END),
}


def _has_dictionary(schema: pa.Schema) -> bool:
    def nested(kind: Any) -> bool:
        if pa.types.is_dictionary(kind):
            return True
        return any(nested(kind.field(i).type) for i in range(kind.num_fields))

    return any(nested(f.type) for f in schema)


_WRITERS: dict[Format, Callable[[Any, pa.Schema], Any]] = {
    Format.CSV: pacsv.CSVWriter,
    Format.PARQUET: pq.ParquetWriter,
    Format.ARROW: ipc.new_stream,
}


# JSON lines by orjson in one call per batch: the rows interleaved with a raw newline
# (``orjson.Fragment``, written verbatim), so ``[row,\n,row,...]`` comes out in C. A raw
# newline cannot occur anywhere else in orjson's compact output (it escapes control
# characters in strings), so ``,\n,`` marks exactly the row boundaries. One ``dumps`` per row
# costs a Python call per row: about 5x slower (json.dumps per row: about 6 MB/s).
_NEWLINE = orjson.Fragment(b"\n")


def _jsonl(batch: pa.RecordBatch) -> bytes:
    rows = batch.to_pylist()
    if not rows:
        return b""
    items: list[Any] = [_NEWLINE] * (2 * len(rows) - 1)
    items[::2] = rows
    return orjson.dumps(items, default=_json_value)[1:-1].replace(b",\n,", b"\n") + b"\n"


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
