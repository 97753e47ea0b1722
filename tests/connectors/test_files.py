"""The files connector against real CSV, Parquet and JSON-lines files, and path attacks."""

from __future__ import annotations

import asyncio
import json
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import connectors.files
from connectors import (
    PathRefused,
    Query,
    SchemaMismatch,
    SourceRejected,
    SourceUnavailable,
    csv_pieces,
)
from connectors.files import FileFormat, FilesConfig, FilesConnector, Last, ahead
from tests.connectors.cases import CASES, SCHEMA, check_case, collect, sample_rows, sample_table


def _write(root: Path, fmt: FileFormat) -> str:
    table = sample_table()
    if fmt is FileFormat.PARQUET:
        pq.write_table(table, root / "sample.parquet", row_group_size=50)
        return "sample.parquet"
    if fmt is FileFormat.CSV:
        pacsv.write_csv(table, root / "sample.csv")
        return "sample.csv"
    lines = [json.dumps(r, default=str) for r in sample_rows()]
    (root / "sample.jsonl").write_text("\n".join(lines) + "\n")
    return "sample.jsonl"


@pytest.fixture(scope="module", params=list(FileFormat))
def dataset(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> FilesConfig:
    root = tmp_path_factory.mktemp(f"files-{request.param}")
    path = _write(root, request.param)
    return FilesConfig(root=root, path=path, format=request.param, schema=SCHEMA, batch_size=64)


@pytest.mark.parametrize("case", CASES)
def test_answers_match_the_reference(dataset: FilesConfig, case: str) -> None:
    check_case(FilesConnector("sample", dataset), case, sample_rows())


def test_parquet_schema_is_described_without_configuration(tmp_path: Path) -> None:
    _write(tmp_path, FileFormat.PARQUET)
    config = FilesConfig(root=tmp_path, path="sample.parquet", format=FileFormat.PARQUET)
    info = asyncio.run(FilesConnector("sample", config).describe())
    assert info.schema.names == SCHEMA.names
    assert info.to_catalog()["columns"][0] == {"name": "id", "type": "int64", "nullable": True}


def test_a_directory_of_files_is_one_dataset(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    table = sample_table()
    pq.write_table(table.slice(0, 100), tmp_path / "parts" / "a.parquet")
    pq.write_table(table.slice(100), tmp_path / "parts" / "b.parquet")
    config = FilesConfig(root=tmp_path, path="parts", format=FileFormat.PARQUET)
    check_case(FilesConnector("sample", config), "group", sample_rows())


@pytest.mark.parametrize(
    "path",
    ["../outside.csv", "sub/../../outside.csv", "/etc/passwd", "\\\\host\\share", "", "a\x00b"],
)
def test_paths_that_climb_or_are_absolute_are_refused(tmp_path: Path, path: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.csv").write_text("id\n1\n")
    config = FilesConfig(root=root, path=path, format=FileFormat.CSV)
    with pytest.raises(PathRefused):
        asyncio.run(FilesConnector("x", config).describe())


def test_a_link_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.csv").write_text("id\n1\n")
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    (root / "dir").symlink_to(tmp_path)
    for path in ("link.csv", "dir/secret.csv"):
        config = FilesConfig(root=root, path=path, format=FileFormat.CSV)
        with pytest.raises(PathRefused, match="link"):
            asyncio.run(FilesConnector("x", config).describe())


def test_a_link_out_of_the_root_inside_a_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "parts").mkdir(parents=True)
    pq.write_table(sample_table(), root / "parts" / "a.parquet")
    pq.write_table(sample_table(), tmp_path / "secret.parquet")
    (root / "parts" / "b.parquet").symlink_to(tmp_path / "secret.parquet")
    config = FilesConfig(root=root, path="parts", format=FileFormat.PARQUET)
    with pytest.raises(PathRefused):
        asyncio.run(FilesConnector("x", config).describe())


def test_a_link_that_stays_inside_the_root_is_followed(tmp_path: Path) -> None:
    _write(tmp_path, FileFormat.PARQUET)
    (tmp_path / "alias.parquet").symlink_to(tmp_path / "sample.parquet")
    config = FilesConfig(root=tmp_path, path="alias.parquet", format=FileFormat.PARQUET)
    assert len(asyncio.run(collect(FilesConnector("x", config), Query(columns=("id",))))) == 240


def test_a_missing_file_is_unavailable(tmp_path: Path) -> None:
    config = FilesConfig(root=tmp_path, path="nope.csv", format=FileFormat.CSV)
    with pytest.raises(SourceUnavailable):
        asyncio.run(FilesConnector("x", config).describe())


def test_garbage_in_a_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all")
    config = FilesConfig(root=tmp_path, path="bad.parquet", format=FileFormat.PARQUET)
    with pytest.raises(SourceRejected):
        asyncio.run(FilesConnector("x", config).describe())


def test_values_that_do_not_fit_the_schema_are_a_schema_mismatch(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("id\n1\nnot-a-number\n")
    schema = pa.schema([("id", pa.int64())])
    config = FilesConfig(root=tmp_path, path="bad.csv", format=FileFormat.CSV, schema=schema)
    with pytest.raises(SchemaMismatch):
        asyncio.run(collect(FilesConnector("x", config), Query()))


def test_reading_runs_exactly_one_unit_ahead_of_the_consumer() -> None:
    """The next unit (a CSV piece's batches) is read in a worker thread while the consumer
    handles the one before (issue 12, throughput), and never more than one: a consumer
    that stalls holds its own unit and the one read ahead, whatever the file's size."""
    produced: list[int] = []
    ready = threading.Event()

    def units() -> Iterator[int]:
        for unit in range(5):
            produced.append(unit)
            if unit == 1:
                ready.set()
            yield unit

    async def run() -> list[int]:
        stream = ahead(units())
        got = [await anext(stream)]
        await asyncio.to_thread(ready.wait, 30)  # the next unit is read without being asked
        await asyncio.sleep(0.05)  # give a wrong implementation the time to read further
        assert produced == [0, 1]
        got += [unit async for unit in stream]
        return got

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("count", "threads"), [(0, 0), (1, 0), (2, 1), (5, 1)])
def test_only_a_longer_stream_gets_a_reading_thread_of_its_own(
    monkeypatch: pytest.MonkeyPatch, count: int, threads: int
) -> None:
    """A small file (one unit, then its end) is read on the loop's shared pool: starting a
    thread cost it more CPU than the read. A longer one reads on a thread of its own."""
    made: list[object] = []

    class Counted(connectors.files.ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(connectors.files, "ThreadPoolExecutor", Counted)

    async def run() -> list[int]:
        return [unit async for unit in ahead(iter(range(count)))]

    assert asyncio.run(run()) == list(range(count))
    assert len(made) == threads


def test_a_small_csv_file_is_read_into_a_buffer_of_its_length(tmp_path: Path) -> None:
    """The CSV file is opened as a file that says its length (pyarrow's input stream does
    not), so a 2 KB file is read into about 2 KB, not a piece's 4 MiB (issue 10: the fresh
    pages cost more CPU per small query than the parsing)."""
    _write(tmp_path, FileFormat.CSV)
    assert (tmp_path / "sample.csv").stat().st_size < 64 << 10
    connector = FilesConnector("sample", FilesConfig(tmp_path, "sample.csv", FileFormat.CSV))

    async def run() -> int:
        opened = await connector._acquire()
        try:
            tracemalloc.start()
            read = connector._read(opened.dataset, Query(columns=("id",)))
            units = [u.unit if isinstance(u, Last) else u for u in read]
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert sum(b.num_rows for unit in units for b in unit) == len(sample_rows())
            return peak
        finally:
            connector._release(opened)

    assert asyncio.run(run()) < 1 << 20


def test_a_csv_unit_is_one_piece_of_the_file(tmp_path: Path) -> None:
    """One thread hop per piece of CSV text, not per batch."""
    rows = 300_000
    note = "lorem ipsum dolor sit amet"
    table = pa.table({"id": pa.array(range(rows), pa.int64()), "note": [note] * rows})
    pacsv.write_csv(table, tmp_path / "big.csv")
    assert (tmp_path / "big.csv").stat().st_size > 2 * csv_pieces.PIECE
    connector = FilesConnector("big", FilesConfig(tmp_path, "big.csv", FileFormat.CSV))

    async def run() -> list[list[pa.RecordBatch]]:
        opened = await connector._acquire()
        try:
            return list(connector._read(opened.dataset, Query(columns=("id", "note"))))
        finally:
            connector._release(opened)

    units = asyncio.run(run())
    pieces = -(-(tmp_path / "big.csv").stat().st_size // csv_pieces.PIECE)
    assert len(units) in (pieces, pieces + 1)  # the lines carried over may make one more
    assert all(len(unit) > 1 for unit in units[:-1])  # several batches per hop
    assert sum(b.num_rows for unit in units for b in unit) == rows
