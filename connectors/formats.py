"""Write a stream of record batches out as JSON lines, CSV, Parquet or Arrow IPC, chunk by chunk.

Each batch is encoded and handed on as bytes at once, so memory stays at about one batch
whatever the size of the result. CSV and Arrow IPC rows are handed on as a view of Arrow's
own buffer (a ``Chunk``), not copied into a ``bytes`` object.

JSON lines are compact (``{"id":1,"name":"a"}``), UTF-8, one object per row: timestamps and
dates in ISO 8601, decimals as strings, binary as base64, and a float that is not finite
(NaN, infinity) as ``null`` (JSON has no such numbers).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

import orjson

from connectors._arrow import ipc, pa, pacsv, pq


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


Chunk = bytes | memoryview
"""Encoded bytes: ``bytes``, or a view (format ``"B"``) of the buffer Arrow encoded into."""


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
    batches: AsyncIterator[pa.RecordBatch], fmt: Format, schema: pa.Schema
) -> AsyncIterator[Chunk]:
    """The bytes of ``batches`` in ``fmt``; ``schema`` is written even for an empty result."""
    if fmt is Format.JSONL:
        async for batch in batches:
            yield _jsonl(batch)
        return
    if fmt in _NATIVE and not _has_dictionary(schema):
        head, each, tail = _NATIVE[fmt]
        async for chunk in _framed(batches, head(schema), each, tail):
            yield chunk
        return
    sink = Chunks()
    writer = _WRITERS[fmt](sink, schema)
    async for batch in batches:
        writer.write_batch(batch)
        chunk = sink.take()
        if chunk:
            yield chunk
    writer.close()
    tail = sink.take()
    if tail:
        yield tail


async def _framed(
    batches: AsyncIterator[pa.RecordBatch],
    head: bytes,
    each: Callable[[pa.RecordBatch], Chunk],
    tail: bytes,
) -> AsyncIterator[Chunk]:
    """``head``, each batch's bytes, ``tail``: the head sent with the first batch."""
    async for batch in batches:
        chunk = each(batch)
        if head:
            chunk, head = head + chunk, b""
        if chunk:
            yield chunk
    if head + tail:
        yield head + tail


# CSV and Arrow IPC without a Python file object: pyarrow's writers call a Python sink for
# every buffer they write (an IPC batch is a dozen writes, a CSV batch one per 1,024 rows),
# each a bytes object of its own; encoding each batch into Arrow's own buffer and taking it
# out once costs a tenth of that for IPC (measured: 0.06 against 0.6 CPU seconds for 320 MiB).
# That buffer is handed on as it is, viewed (``_viewed``), not copied into a ``bytes`` object:
# through the gateway, a gigabyte of Arrow IPC cost the server about 0.1 CPU seconds less
# (docs/connectors.md#measured), CPU the two cores share with TLS and the client.
# The bytes are the writers' own (``RecordBatch.serialize`` is the stream writer's message;
# ``tests/connectors/test_formats.py`` compares them). Dictionary columns need the stream
# writer's dictionary messages: such schemas go through the writers.
_CSV_WRITE = pacsv.WriteOptions(include_header=False, batch_size=64 * 1024)
_IPC_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the stream writer's end-of-stream marker


@lru_cache(maxsize=256)  # per schema: the same few datasets' schemas, query after query
def _csv_header(schema: pa.Schema) -> bytes:
    return bytes(_csv_rows(schema.empty_table(), pacsv.WriteOptions(include_header=True)))


def _csv_rows(rows: pa.RecordBatch | pa.Table, options: Any = _CSV_WRITE) -> memoryview:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink, write_options=options)
    return _viewed(sink.getvalue())


def _ipc_message(batch: pa.RecordBatch) -> memoryview:
    return _viewed(batch.serialize())


def _viewed(buffer: pa.Buffer) -> memoryview:
    """``buffer``'s bytes without a copy (the view keeps it alive), as unsigned bytes: Arrow
    exports signed ones (``"b"``), which would not compare equal to the same ``bytes``."""
    return memoryview(buffer).cast("B")


def _ipc_schema(schema: pa.Schema) -> bytes:
    return bytes(schema.serialize().to_pybytes())


_NATIVE: dict[
    Format, tuple[Callable[[pa.Schema], bytes], Callable[[pa.RecordBatch], Chunk], bytes]
] = {
    Format.CSV: (_csv_header, _csv_rows, b""),
    Format.ARROW: (_ipc_schema, _ipc_message, _IPC_END),
}


@lru_cache(maxsize=256)
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
