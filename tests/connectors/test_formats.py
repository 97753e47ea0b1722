"""Results written as JSON lines, CSV, Parquet and Arrow IPC read back to the same rows."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pyarrow import ipc

from connectors import Chunk, Format, encode
from tests.connectors.cases import SCHEMA, sample_table


async def _batches(table: pa.Table) -> AsyncIterator[pa.RecordBatch]:
    for batch in table.to_batches(max_chunksize=50):
        yield batch


def _encoded(table: pa.Table, fmt: Format) -> tuple[bytes, int]:
    async def run() -> tuple[bytes, int]:
        chunks = [c async for c in encode(_batches(table), fmt, table.schema)]
        return b"".join(chunks), len(chunks)

    return asyncio.run(run())


@pytest.mark.parametrize("fmt", [Format.PARQUET, Format.ARROW, Format.CSV])
def test_binary_and_csv_round_trip(fmt: Format) -> None:
    table = sample_table()
    data, chunks = _encoded(table, fmt)
    assert chunks > 1  # streamed, not written in one piece
    if fmt is Format.PARQUET:
        back = pq.read_table(io.BytesIO(data))
    elif fmt is Format.ARROW:
        back = ipc.open_stream(data).read_all()
    else:
        convert = pacsv.ConvertOptions(
            column_types=SCHEMA, strings_can_be_null=True, quoted_strings_can_be_null=False
        )
        back = pacsv.read_csv(io.BytesIO(data), convert_options=convert)
    assert back.equals(table)


def test_json_lines_round_trip() -> None:
    data, _ = _encoded(sample_table(), Format.JSONL)
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert rows[1] == {
        "id": 1,
        "region": "BE",
        "amount": 9.25,
        "qty": 1,
        "day": "2024-01-02",
        "active": True,
    }
    assert len(rows) == 240


def test_an_empty_result_still_carries_its_schema() -> None:
    empty = sample_table().slice(0, 0)
    data, _ = _encoded(empty, Format.ARROW)
    assert ipc.open_stream(data).read_all().schema.equals(SCHEMA)
    assert Format.PARQUET.media_type == "application/vnd.apache.parquet"


HOSTILE = ["a,\n,b", '"},{"', "\x00\x1f\u2028", "é 日本 🙂", ",\\n,", ""]


def test_json_lines_keep_every_row_apart_whatever_the_strings_hold() -> None:
    """Rows are split at raw newlines in the encoder: no string value may produce one."""
    table = pa.table({"id": pa.array(range(len(HOSTILE))), "text": pa.array(HOSTILE)})
    data, _ = _encoded(table, Format.JSONL)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line) for line in lines[:-1]] == table.to_pylist()


def test_json_lines_values_by_type() -> None:
    row = {
        "naive": datetime(2026, 1, 1, 1, 2, 3, 456),
        "aware": datetime(2026, 1, 1, tzinfo=UTC),
        "day": date(2026, 1, 2),
        "price": Decimal("1.10"),
        "blob": b"\x00\xff",
        "nan": float("nan"),
        "inf": float("inf"),
        "none": None,
        "list": [1, 2],
        "struct": {"a": "b"},
    }
    schema = pa.schema(
        [
            ("naive", pa.timestamp("us")),
            ("aware", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
            ("price", pa.decimal128(5, 2)),
            ("blob", pa.binary()),
            ("nan", pa.float64()),
            ("inf", pa.float32()),
            ("none", pa.int64()),
            ("list", pa.list_(pa.int64())),
            ("struct", pa.struct([("a", pa.string())])),
        ]
    )
    data, _ = _encoded(pa.Table.from_pylist([row], schema), Format.JSONL)
    assert data.endswith(b"\n")
    assert json.loads(data) == {
        "naive": "2026-01-01T01:02:03.000456",
        "aware": "2026-01-01T00:00:00+00:00",
        "day": "2026-01-02",
        "price": "1.10",
        "blob": "AP8=",
        "nan": None,  # JSON has no NaN: json.dumps wrote an invalid `NaN`
        "inf": None,
        "none": None,
        "list": [1, 2],
        "struct": {"a": "b"},
    }


def _written(table: pa.Table, fmt: Format) -> bytes:
    """``table`` as pyarrow's own stream writers write it, batch by batch."""
    sink = pa.BufferOutputStream()
    opened = pacsv.CSVWriter if fmt is Format.CSV else ipc.new_stream
    with opened(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=50):
            writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


DICTIONARY = pa.table(
    {
        "id": pa.array(range(120), pa.int64()),
        "kind": pa.array(["a", "b", "c"] * 40).dictionary_encode(),
    }
)


@pytest.mark.parametrize("fmt", [Format.ARROW, Format.CSV])
@pytest.mark.parametrize(
    "table",
    [sample_table(), sample_table().slice(0, 0), sample_table().slice(7, 60), DICTIONARY],
    ids=["rows", "empty", "sliced", "dictionary"],
)
def test_csv_and_arrow_bytes_are_those_of_pyarrows_writers(fmt: Format, table: pa.Table) -> None:
    """The batches are encoded without a Python file object (issue 12, throughput), byte for
    byte as pyarrow's stream writers write them: one schema or header, then the rows."""
    data, _ = _encoded(table, fmt)
    assert data == _written(table, fmt)


def test_a_schemas_csv_header_is_made_once() -> None:
    """The CSV header (pyarrow's writer on an empty table) is made once per schema, not per
    query (issue 10: a small query's CPU); another schema gets its own, with its names."""
    from connectors import formats  # noqa: PLC0415 - the module's own cache

    first = pa.schema([("made_once_a", pa.int64()), ("b", pa.string())])
    other = pa.schema([("made_once_c", pa.int64())])
    table = pa.table({"made_once_a": [1], "b": ["x"]}, schema=first)
    before = formats._csv_header.cache_info()
    for _ in range(3):
        out, _ = _encoded(table, Format.CSV)
        assert out.startswith(b'"made_once_a","b"\n1,"x"\n')
    after = formats._csv_header.cache_info()
    assert after.misses == before.misses + 1
    assert after.hits == before.hits + 2
    assert _encoded(other.empty_table(), Format.CSV)[0] == b'"made_once_c"\n'


@pytest.mark.parametrize("fmt", [Format.ARROW, Format.CSV])
def test_csv_and_arrow_rows_are_handed_on_in_arrows_own_buffer(fmt: Format) -> None:
    """A batch's CSV or IPC bytes are Arrow's buffer, viewed, not copied into a bytes object
    (issue 12: every copy of a gigabyte is CPU the two cores share with TLS); viewed as
    unsigned bytes, so a chunk compares equal to the same bytes."""
    table = pa.table({"n": pa.array([255, -1] * 60, pa.int64()), "s": ["\xff\u20ac"] * 120})

    async def run() -> list[Chunk]:
        return [c async for c in encode(_batches(table), fmt, table.schema)]

    chunks = asyncio.run(run())
    rows = chunks[1:-1] if fmt is Format.ARROW else chunks[1:]  # after the head, before the end
    assert rows
    for chunk in rows:
        assert isinstance(chunk, memoryview)
        assert chunk.format == "B"
        assert isinstance(chunk.obj, pa.Buffer)
        assert chunk == bytes(chunk)
    assert b"".join(chunks) == _written(table, fmt)
