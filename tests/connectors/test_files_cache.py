"""Issue 10, a small CSV file's fixed cost: its parsed table is kept while the file is unchanged.

Every read still opens the file through the confined walk and ``fstat``s the descriptor it
got; when (device, inode, size, mtime, ctime) equals a cached entry's stamp, and that stamp
was settled when cached (mtime and ctime at least two seconds before the ``fstat``: git's
racy-clean rule), the cached table is filtered and projected instead of parsing the file
again. A small file's answer takes one thread hop; the change stamp is taken once per pass
of the event loop, not once per check.

A "settled" file is made here by moving the connector's clock forward
(``connectors.files._now_ns``), never by sleeping: the file system's own timestamps are real.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pytest

import connectors.files
from connectors import PathRefused, Query, SchemaMismatch, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector, Last, ahead
from connectors.query import Op, Predicate
from policies.decision import DataLimits

TEXT = "id,name\n1,alpha\n2,bravo\n3,charl\n"
SAME_SIZE = "id,name\n7,xxxxx\n8,yyyyy\n9,zzzzz\n"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per ``pyarrow.csv.read_csv`` call the connector makes."""
    seen: list[int] = []
    real = pacsv.read_csv

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(connectors.csv_pieces.pacsv, "read_csv", counting)
    return seen


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """The kept tables are the process's: each test starts and ends with none."""
    connectors.files.KEPT.clear()
    yield
    connectors.files.KEPT.clear()


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connector's clock ten seconds ahead: a file just written counts as settled."""
    monkeypatch.setattr(connectors.files, "_now_ns", lambda: time.time_ns() + 10_000_000_000)


def _connector(root: Path, path: str = "d.csv") -> FilesConnector:
    return FilesConnector("d", FilesConfig(root, path, FileFormat.CSV))


async def _rows(connector: FilesConnector, query: Query | None = None) -> list[dict[str, Any]]:
    schema = await connector.schema()
    permitted = narrow(query or Query(), DataLimits(), schema)
    rows: list[dict[str, Any]] = []
    async for batch in connector.stream(permitted):
        rows.extend(batch.to_pylist())
    return rows


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in rows]


def _count_hops() -> list[int]:
    """From now on, one entry per ``run_in_executor`` of the running loop (a thread hop)."""
    loop = asyncio.get_running_loop()
    real = loop.run_in_executor
    hops: list[int] = []

    def counting(*args: Any) -> Any:
        hops.append(1)
        return real(*args)

    loop.run_in_executor = counting  # type: ignore[method-assign]
    return hops


def _run(connector: FilesConnector, steps: Any) -> Any:
    async def run() -> Any:
        try:
            return await steps()
        finally:
            await connector.aclose()

    return asyncio.run(run())


@pytest.mark.usefixtures("later")
def test_an_unchanged_settled_file_is_parsed_once(tmp_path: Path, parses: list[int]) -> None:
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)

    async def steps() -> list[list[dict[str, Any]]]:
        answers = [await _rows(connector)]  # the dataset opened: the root held from here
        held = _open_fds()
        answers += [await _rows(connector) for _ in range(3)]
        assert _open_fds() == held  # no descriptor left by a kept read
        return answers

    answers = _run(connector, steps)
    assert answers == [answers[0]] * 4
    assert _ids(answers[0]) == [1, 2, 3]
    assert len(parses) == 1


@pytest.mark.usefixtures("later")
def test_filter_and_columns_are_applied_to_the_cached_table(
    tmp_path: Path, parses: list[int]
) -> None:
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)
    by_id = Query(columns=("id",))
    bravo = Query(columns=("name",), where=(Predicate("id", Op.GE, 2),))

    async def steps() -> tuple[Any, ...]:
        return (
            await _rows(connector),
            await _rows(connector, by_id),
            await _rows(connector, bravo),
        )

    full, ids, names = _run(connector, steps)
    assert full == [
        {"id": 1, "name": "alpha"},
        {"id": 2, "name": "bravo"},
        {"id": 3, "name": "charl"},
    ]
    assert ids == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert names == [{"name": "bravo"}, {"name": "charl"}]
    assert len(parses) == 1


def test_a_file_not_yet_settled_is_parsed_every_time(tmp_path: Path, parses: list[int]) -> None:
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)

    async def steps() -> None:
        for _ in range(3):
            assert _ids(await _rows(connector)) == [1, 2, 3]

    _run(connector, steps)
    assert len(parses) == 3


def _change_cases() -> dict[str, Any]:
    def rewrite(path: Path) -> None:
        with path.open("r+") as f:  # in place: same inode, same size
            f.write(SAME_SIZE)

    def touch(path: Path) -> None:
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 1_000_000_000))

    def rename(path: Path) -> None:
        fresh = path.with_name("fresh.csv")
        fresh.write_text(SAME_SIZE)
        fresh.replace(path)

    def truncate(path: Path) -> None:
        with path.open("r+") as f:
            f.truncate(len("id,name\n1,alpha\n"))

    def forged(path: Path) -> None:  # same size, mtime put back: only ctime tells
        before = path.stat()
        rewrite(path)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    return {
        "rewritten in place, same size": (rewrite, [7, 8, 9]),
        "touched": (touch, [1, 2, 3]),
        "replaced by rename": (rename, [7, 8, 9]),
        "truncated": (truncate, [1]),
        "mtime forged with os.utime": (forged, [7, 8, 9]),
    }


@pytest.mark.usefixtures("later")
@pytest.mark.parametrize("case", list(_change_cases()))
def test_a_changed_file_is_parsed_again(tmp_path: Path, parses: list[int], case: str) -> None:
    change, expected = _change_cases()[case]
    path = tmp_path / "d.csv"
    path.write_text(TEXT)
    connector = _connector(tmp_path)

    async def steps() -> tuple[list[int], list[int]]:
        first = _ids(await _rows(connector))
        await _rows(connector)  # served from the cache
        assert len(parses) == 1
        change(path)
        return first, _ids(await _rows(connector))

    first, after = _run(connector, steps)
    assert first == [1, 2, 3]
    assert after == expected
    assert len(parses) == 2


def test_a_rewrite_within_the_timestamps_tick_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The racy rule: on a file system whose timestamps are whole seconds, a rewrite of the
    same size within the same second keeps the stamp. A stamp that was not settled when
    read is never trusted, so the new content is served."""
    real = os.fstat

    def coarse(fd: int) -> os.stat_result:  # timestamps truncated to the second, as on FAT
        st = real(fd)
        fields = list(st)
        values = {"st_mtime_ns": st.st_mtime_ns // 10**9 * 10**9}
        values["st_ctime_ns"] = st.st_ctime_ns // 10**9 * 10**9
        return _Stat(fields, values)

    monkeypatch.setattr(connectors.files, "_fstat", coarse)
    path = tmp_path / "d.csv"
    connector = _connector(tmp_path)

    async def steps() -> tuple[list[int], list[int]] | None:
        start = time.time_ns() // 10**9
        path.write_text(TEXT)
        first = _ids(await _rows(connector))
        with path.open("r+") as f:
            f.write(SAME_SIZE)
        if path.stat().st_ctime_ns // 10**9 != start:
            return None  # crossed a second: the stamp changed anyway, nothing shown
        return first, _ids(await _rows(connector))

    for _ in range(5):
        got = _run(connector, steps)
        if got is not None:
            break
        connector = _connector(tmp_path)
    assert got == ([1, 2, 3], [7, 8, 9])


class _Stat:
    """A stat result with some fields replaced."""

    def __init__(self, fields: list[Any], values: dict[str, int]) -> None:
        self._st = os.stat_result(fields)
        self._values = values

    def __getattr__(self, name: str) -> Any:
        return self._values.get(name, getattr(self._st, name))


@pytest.mark.usefixtures("later")
def test_a_small_file_is_answered_in_one_thread_hop(tmp_path: Path) -> None:
    """Today's second hop only found the end; the unit source says its last unit."""
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)

    async def steps() -> list[int]:
        await _rows(connector)  # the dataset opened (a hop of its own, once)
        hops = _count_hops()
        counts = []
        for _ in range(3):  # the first parses, the others are cached: one hop each
            hops.clear()
            await _rows(connector)
            counts.append(len(hops))
        return counts

    assert _run(connector, steps) == [1, 1, 1]


def test_a_file_not_settled_is_answered_in_one_hop_too(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)

    async def steps() -> int:
        await _rows(connector)
        hops = _count_hops()
        assert _ids(await _rows(connector)) == [1, 2, 3]
        return len(hops)

    assert _run(connector, steps) == 1


def test_ahead_asks_no_more_after_a_last_unit() -> None:
    asked: list[int] = []

    def units() -> Iterator[Any]:
        asked.append(0)
        yield 0
        asked.append(1)
        yield Last(1)
        asked.append(2)  # never reached
        yield 2

    async def run() -> list[Any]:
        return [unit async for unit in ahead(units())]

    assert asyncio.run(run()) == [0, 1]
    assert asked == [0, 1]


@pytest.mark.usefixtures("later")
def test_the_cache_is_bounded_and_least_recently_used_goes_first(
    tmp_path: Path, parses: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "parts").mkdir()
    for name in "abcd":
        (tmp_path / "parts" / f"{name}.csv").write_text(TEXT)
    one = pacsv.read_csv(pa.py_buffer(TEXT.encode())).get_total_buffer_size()
    parses.clear()
    monkeypatch.setattr(connectors.files, "CACHE_BYTES", 3 * one)
    connector = _connector(tmp_path, "parts")

    async def steps() -> list[int]:
        counts = []
        for _ in range(3):
            before = len(parses)
            assert len(await _rows(connector)) == 12
            counts.append(len(parses) - before)
            assert connector._tables.size <= 3 * one
        return counts

    # four files, room for three: each pass evicts the file the next one needs first
    assert _run(connector, steps) == [4, 4, 4]


@pytest.mark.usefixtures("later")
def test_the_cache_keeps_nothing_larger_than_its_bound(
    tmp_path: Path, parses: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connectors.files, "CACHED_TEXT", len(TEXT) - 1)
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)

    async def steps() -> int:
        for _ in range(3):
            await _rows(connector)
        return connector._tables.size

    assert _run(connector, steps) == 0
    assert len(parses) == 3


@pytest.mark.usefixtures("later")
def test_the_cache_is_emptied_when_the_connector_closes(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(TEXT)
    connector = _connector(tmp_path)

    async def run() -> tuple[int, int]:
        await _rows(connector)
        held = connector._tables.size
        await connector.aclose()
        return held, connector._tables.size

    held, after = asyncio.run(run())
    assert held > 0
    assert after == 0


@pytest.mark.usefixtures("later")
def test_a_link_swapped_out_of_the_root_after_caching_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with the change stamp blind to the swap, the read walks again and refuses."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "d.csv").write_text(TEXT)
    (tmp_path / "secret.csv").write_text(SAME_SIZE)
    monkeypatch.setattr(connectors.files, "_stamp", lambda _config: (("same",),))
    connector = _connector(root)

    async def steps() -> None:
        assert _ids(await _rows(connector)) == [1, 2, 3]
        (root / "d.csv").unlink()
        (root / "d.csv").symlink_to(tmp_path / "secret.csv")
        with pytest.raises(PathRefused):
            await _rows(connector)

    _run(connector, steps)


@pytest.mark.usefixtures("later")
def test_a_file_swapped_for_another_after_caching_is_read_as_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d.csv").write_text(TEXT)
    (tmp_path / "other.csv").write_text(SAME_SIZE)
    monkeypatch.setattr(connectors.files, "_stamp", lambda _config: (("same",),))
    connector = _connector(tmp_path)

    async def steps() -> list[int]:
        assert _ids(await _rows(connector)) == [1, 2, 3]
        (tmp_path / "d.csv").unlink()
        (tmp_path / "d.csv").symlink_to("other.csv")
        return _ids(await _rows(connector))

    assert _run(connector, steps) == [7, 8, 9]


@pytest.mark.usefixtures("later")
def test_values_outside_the_asked_columns_do_not_fail_the_query(tmp_path: Path) -> None:
    """The cache parses every column; one that does not fit the schema fails only the
    queries that ask for it, as before."""
    (tmp_path / "d.csv").write_text("id,n\n1,2\n2,oops\n")
    schema = pa.schema([("id", pa.int64()), ("n", pa.int64())])
    connector = FilesConnector("d", FilesConfig(tmp_path, "d.csv", FileFormat.CSV, schema=schema))

    async def steps() -> list[dict[str, Any]]:
        return await _rows(connector, Query(columns=("id",)))

    assert _run(connector, steps) == [{"id": 1}, {"id": 2}]


@pytest.mark.usefixtures("later")
def test_a_small_json_lines_file_is_parsed_once_and_again_when_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for JSON lines: kept while unchanged, one hop per answer."""
    seen: list[int] = []
    real = pajson.read_json

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(connectors.files.pajson, "read_json", counting)
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1, "name": "alpha"}\n{"id": 2, "name": "bravo"}\n')
    connector = FilesConnector("d", FilesConfig(tmp_path, "d.jsonl", FileFormat.JSONL))
    bravo = Query(columns=("name",), where=(Predicate("id", Op.GE, 2),))

    async def steps() -> tuple[list[Any], int, int]:
        got = [await _rows(connector)]
        hops = _count_hops()
        got.append(await _rows(connector, bravo))
        one = len(hops)
        parsed = len(seen)
        with path.open("r+") as f:  # in place: same inode, same size
            f.write('{"id": 7, "name": "xxxxx"}\n{"id": 8, "name": "yyyyy"}\n')
        got.append(await _rows(connector))
        return got, one, parsed

    got, one, parsed = _run(connector, steps)
    assert got == [
        [{"id": 1, "name": "alpha"}, {"id": 2, "name": "bravo"}],
        [{"name": "bravo"}],
        [{"id": 7, "name": "xxxxx"}, {"id": 8, "name": "yyyyy"}],
    ]
    assert (one, parsed, len(seen)) == (1, 1, 2)


def test_the_change_stamp_is_taken_once_per_pass_of_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema check and the read's check, back to back in one request, share a stamp;
    the next pass of the loop stamps again."""
    (tmp_path / "d.csv").write_text(TEXT)
    stamps: list[int] = []
    real = connectors.files._stamp

    def counting(config: FilesConfig) -> Any:
        stamps.append(1)
        return real(config)

    monkeypatch.setattr(connectors.files, "_stamp", counting)
    connector = _connector(tmp_path)

    async def steps() -> tuple[int, int, int]:
        await _rows(connector)  # opens the dataset
        stamps.clear()
        await _rows(connector)
        once = len(stamps)
        await asyncio.sleep(0)
        await connector.schema()
        again = len(stamps)
        await connector.schema()
        await asyncio.create_task(connector.schema())  # another task: a stamp of its own
        return once, again, len(stamps)

    assert _run(connector, steps) == (1, 2, 3)


@pytest.mark.usefixtures("later")
def test_the_bound_is_the_processs_across_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CACHE_BYTES`` bounds the kept tables of every dataset together (many small datasets
    cannot each keep their own 32 MiB); closing one dataset drops only its own tables."""
    for name in "abcd":
        (tmp_path / f"{name}.csv").write_text(TEXT)
    one = pacsv.read_csv(pa.py_buffer(TEXT.encode())).get_total_buffer_size()
    monkeypatch.setattr(connectors.files, "CACHE_BYTES", 3 * one)
    each = [_connector(tmp_path, f"{name}.csv") for name in "abcd"]

    async def run() -> tuple[int, int, int]:
        for connector in each:
            assert len(await _rows(connector)) == 3
        together = connectors.files.KEPT.size
        await each[3].aclose()
        after = connectors.files.KEPT.size
        for connector in each[:3]:
            await connector.aclose()
        return together, after, connectors.files.KEPT.size

    together, after, closed = asyncio.run(run())
    assert together == 3 * one  # the fourth dataset's table pushed out the first's
    assert after == 2 * one  # the closed dataset's own table went, the others stayed
    assert closed == 0


@pytest.mark.usefixtures("later")
def test_a_file_read_as_csv_is_not_served_to_a_json_lines_dataset(tmp_path: Path) -> None:
    """Two datasets on one file, CSV and JSON lines with the same columns: each keeps its
    own parse (the kept tables are per format). A header line alone is an empty CSV table
    and no JSON at all: the JSON lines dataset still refuses it after the CSV one kept it."""
    (tmp_path / "d.txt").write_text("id,name\n")
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    csv = FilesConnector("c", FilesConfig(tmp_path, "d.txt", FileFormat.CSV, schema=schema))
    jsonl = FilesConnector("j", FilesConfig(tmp_path, "d.txt", FileFormat.JSONL, schema=schema))

    async def run() -> list[dict[str, Any]]:
        try:
            assert await _rows(csv) == []
            assert connectors.files.KEPT.size > 0
            return await _rows(jsonl)
        finally:
            await csv.aclose()
            await jsonl.aclose()

    with pytest.raises(SchemaMismatch, match="JSON parse error"):
        asyncio.run(run())
