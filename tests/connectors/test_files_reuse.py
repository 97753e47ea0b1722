"""Issue 10, the connector's fixed cost: a file dataset is opened once and reused while unchanged.

The files and their pyarrow dataset (schema, fragments) are shared by every request while a
stat of each shows them unchanged; a file replaced (new inode), rewritten in place (same
size, new mtime and ctime) or added to a directory dataset is opened again, its new schema
and rows served; a stream in flight keeps reading the dataset it started on.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import connectors.files
from connectors import Query, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector
from policies.decision import DataLimits


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time a files connector opens its files and builds the dataset."""
    seen: list[int] = []
    real = FilesConnector._open

    def counting(self: FilesConnector) -> connectors.files.ConfinedFiles:
        seen.append(1)
        return real(self)

    monkeypatch.setattr(FilesConnector, "_open", counting)
    return seen


def _csv(path: Path, columns: dict[str, list[object]]) -> None:
    pacsv.write_csv(pa.table(columns), path)


async def _rows(connector: FilesConnector) -> list[dict[str, object]]:
    schema = await connector.schema()
    permitted = narrow(Query(), DataLimits(), schema)
    rows: list[dict[str, object]] = []
    async for batch in connector.stream(permitted):
        rows.extend(batch.to_pylist())
    return rows


def test_an_unchanged_file_is_opened_once_for_many_requests(
    tmp_path: Path, opens: list[int]
) -> None:
    _csv(tmp_path / "d.csv", {"a": [1, 2]})
    connector = FilesConnector("d", FilesConfig(tmp_path, "d.csv", FileFormat.CSV))

    async def run() -> list[list[dict[str, object]]]:
        try:
            return [await _rows(connector) for _ in range(3)]
        finally:
            await connector.aclose()

    assert asyncio.run(run()) == [[{"a": 1}, {"a": 2}]] * 3
    assert len(opens) == 1


def test_a_replaced_file_is_opened_again_with_its_new_schema(
    tmp_path: Path, opens: list[int]
) -> None:
    _csv(tmp_path / "d.csv", {"a": [1]})
    connector = FilesConnector("d", FilesConfig(tmp_path, "d.csv", FileFormat.CSV))

    async def run() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        try:
            before = await _rows(connector)
            _csv(tmp_path / "new.csv", {"a": [1], "b": ["x"]})
            (tmp_path / "new.csv").replace(tmp_path / "d.csv")  # a new inode under the name
            return before, await _rows(connector)
        finally:
            await connector.aclose()

    before, after = asyncio.run(run())
    assert before == [{"a": 1}]
    assert after == [{"a": 1, "b": "x"}]
    assert len(opens) == 2


def test_a_file_rewritten_in_place_with_the_same_size_and_mtime_is_read_again(
    tmp_path: Path, opens: list[int]
) -> None:
    path = tmp_path / "d.csv"
    _csv(path, {"a": [1]})
    connector = FilesConnector("d", FilesConfig(tmp_path, "d.csv", FileFormat.CSV))

    async def run() -> list[dict[str, object]]:
        try:
            await _rows(connector)
            info = path.stat()
            path.write_bytes(path.read_bytes().replace(b"1", b"7"))  # same inode, same size
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the old mtime back
            return await _rows(connector)
        finally:
            await connector.aclose()

    assert asyncio.run(run()) == [{"a": 7}]  # the ctime moved: no tool can set it back
    assert len(opens) == 2


def test_a_file_added_to_a_directory_dataset_is_seen(tmp_path: Path, opens: list[int]) -> None:
    (tmp_path / "parts").mkdir()
    _csv(tmp_path / "parts" / "1.csv", {"a": [1]})
    connector = FilesConnector("d", FilesConfig(tmp_path, "parts", FileFormat.CSV))

    async def run() -> list[dict[str, object]]:
        try:
            await _rows(connector)
            _csv(tmp_path / "parts" / "2.csv", {"a": [2]})
            return await _rows(connector)
        finally:
            await connector.aclose()

    assert sorted(r["a"] for r in asyncio.run(run())) == [1, 2]  # type: ignore[type-var]
    assert len(opens) == 2


def test_a_stream_in_flight_finishes_on_the_dataset_it_started_on(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _csv(path, {"a": list(range(5000))})
    config = FilesConfig(tmp_path, "d.csv", FileFormat.CSV, batch_size=64)
    connector = FilesConnector("d", config)

    async def run() -> tuple[int, list[dict[str, object]]]:
        try:
            schema = await connector.schema()
            stream = connector.stream(narrow(Query(), DataLimits(), schema))
            count = (await anext(stream)).num_rows
            _csv(tmp_path / "new.csv", {"a": [9]})
            (tmp_path / "new.csv").replace(path)
            fresh = await _rows(connector)  # opens the new file, retires the old dataset
            async for batch in stream:  # the old one is still open for this stream
                count += batch.num_rows
            return count, fresh
        finally:
            await connector.aclose()

    count, fresh = asyncio.run(run())
    assert count == 5000
    assert fresh == [{"a": 9}]
