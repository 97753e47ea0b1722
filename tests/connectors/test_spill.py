"""Grouping and ordering in the gateway stay within the memory limit, or are refused (400).

The memory tests run in a child process and read its peak RSS (``VmHWM``) after resetting
it once the imports are done, so the figure is the query's own. The source is generated
batch by batch, so only the gateway's work can hold rows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectors import AggFunc, Aggregate, Order, Query
from connectors.errors import QueryTooLarge, SpillFailed
from connectors.spill import PREFIX, SpillConfig, sql_for
from tests.connectors.cases import CASES, check_case, sample_rows, sample_table

MiB = 1 << 20

CHILD = textwrap.dedent(
    """
    import asyncio, logging, sys
    from pathlib import Path
    from connectors import AggFunc, Aggregate, NO_PUSHDOWN, Order, Query
    from connectors.spill import SpillConfig
    from tests.connectors.test_spill import Generated, peak_after_reset, run

    kind, spill_dir, rows = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    queries = {
        "group": Query(group_by=("id",), aggregates=(Aggregate(AggFunc.SUM, "value"),)),
        "order": Query(columns=("id", "value", "note"), order_by=(Order("value"),)),
    }
    source = Generated(rows)
    source.spill = SpillConfig(spill_dir, memory_limit=32 * 2**20)
    engine = []
    handler = logging.Handler()
    handler.emit = lambda record: engine.append(record.engine_peak)
    logging.getLogger("sluis.spill").addHandler(handler)
    logging.getLogger("sluis.spill").setLevel(logging.INFO)
    base = peak_after_reset()
    count = asyncio.run(run(source, queries[kind]))
    print(count, peak_after_reset() - base, *engine)
    """
)


def peak_after_reset() -> int:
    """This process's peak RSS in bytes since the last call, then reset to the current RSS.

    The first call's answer is the RSS right after the reset: the baseline.
    """
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    status = Path("/proc/self/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    return peak * 1024


def _child_peak(kind: str, spill_dir: Path, rows: int) -> tuple[int, int, int]:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(spill_dir), str(rows)],
        capture_output=True, text=True, cwd=root, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    count, peak, engine = done.stdout.split()[-3:]
    return int(count), int(peak), int(engine)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("kind", ["group", "order"])
def test_grouping_and_ordering_stay_within_the_memory_limit(kind: str, tmp_path: Path) -> None:
    rows = 3_000_000  # ~190 MiB of Arrow data, every id its own group
    count, peak, engine = _child_peak(kind, tmp_path, rows)
    assert count == rows
    assert peak < 120 * MiB, f"peak RSS above the baseline: {peak / MiB:.0f} MiB"
    print(f"{kind}: gateway +{peak / MiB:.0f} MiB, engine process {engine / MiB:.0f} MiB")
    assert engine < 32 * MiB + 200 * MiB, f"engine process peak RSS {engine / MiB:.0f} MiB"
    assert list(tmp_path.iterdir()) == []  # the spill files are gone


def test_past_the_spill_limit_the_query_is_refused(tmp_path: Path) -> None:
    source = Generated(3_000_000)
    source.spill = SpillConfig(tmp_path, memory_limit=32 * MiB, max_disk=0)
    query = Query(columns=("id", "value", "note"), order_by=(Order("value"),))
    with pytest.raises(QueryTooLarge) as caught:
        asyncio.run(run(source, query))
    assert caught.value.code == "query_too_large"
    assert "memory limit 32 MiB" in caught.value.reason
    assert "spill limit 0 MiB" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", [c for c, q in CASES.items() if q.order_by or q.aggregates])
def test_small_memory_limit_same_answers(case: str, tmp_path: Path) -> None:
    from connectors import NO_PUSHDOWN  # noqa: PLC0415 - local to the one test using it
    from connectors.testing import InMemoryConnector  # noqa: PLC0415

    connector = InMemoryConnector("sample", sample_table(), pushdown=NO_PUSHDOWN, batch_size=5)
    connector.spill = SpillConfig(tmp_path, memory_limit=16 * MiB)
    check_case(connector, case, sample_rows())


def test_names_are_quoted_in_the_engine_sql() -> None:
    query = Query(
        group_by=('we"ird',),
        aggregates=(Aggregate(AggFunc.COUNT, alias='n"; DROP'),),
        order_by=(Order('n"; DROP', descending=True),),
        limit=3,
    )
    sql = sql_for(query)
    assert '"we""ird"' in sql
    assert '"n""; DROP" DESC NULLS LAST' in sql
    assert sql.endswith("LIMIT 3")


# --- a generated source: the real Connector interface, rows made batch by batch ----------

from collections.abc import AsyncIterator  # noqa: E402 - grouped with the double below

import pyarrow as pa  # noqa: E402

from connectors import NO_PUSHDOWN, narrow  # noqa: E402
from connectors.base import Connector  # noqa: E402
from connectors.plan import Pushdown  # noqa: E402
from policies.decision import DataLimits  # noqa: E402

SCHEMA = pa.schema([("id", pa.int64()), ("value", pa.float64()), ("note", pa.string())])
BATCH = 50_000


class Generated(Connector):
    """``rows`` rows, ids unique, values in descending order (a sort must move all of them)."""

    kind = "generated"

    def __init__(self, rows: int) -> None:
        super().__init__("generated")
        self._rows = rows

    @property
    def pushdown(self) -> frozenset[Pushdown]:
        return NO_PUSHDOWN

    async def _schema(self) -> pa.Schema:
        return SCHEMA

    async def _batches(self, query: Query) -> AsyncIterator[pa.RecordBatch]:
        for start in range(0, self._rows, BATCH):
            ids = pa.array(range(start, min(start + BATCH, self._rows)), pa.int64())
            values = pa.array([float(self._rows - i) for i in ids.to_pylist()], pa.float64())
            notes = pa.array([f"row {i:012d} lorem ipsum" for i in ids.to_pylist()])
            batch = pa.record_batch([ids, values, notes], schema=SCHEMA)
            yield batch.select(list(query.columns))


async def run(source: Connector, query: Query) -> int:
    """Rows the query returns (batches dropped as they come)."""
    permitted = narrow(query, DataLimits(), await source.schema())
    rows = 0
    async for batch in source.stream(permitted):
        rows += batch.num_rows
    return rows


def test_running_out_of_room_behind_the_arrow_reader_is_still_a_refusal() -> None:
    """DuckDB's errors reach the engine as Arrow errors when the reader hits them mid-stream,
    or as a plain OSError while merging sorted runs: both are running out of room."""
    from connectors.spill_engine import out_of_room  # noqa: PLC0415 - imports DuckDB

    failing = pa.ArrowInvalid("Out of Memory Error: could not allocate block of size 256 KiB")
    merging = OSError("Out of Memory Error: failed to pin block of size 256.0 KiB (30.4 MiB used)")
    assert out_of_room(failing)
    assert out_of_room(merging)  # what ordering 15 M rows at 32 MiB raised (bench.memory)
    assert not out_of_room(pa.ArrowInvalid("something else"))


def test_an_unusable_spill_directory_is_a_spill_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    source = Generated(10)
    source.spill = SpillConfig(blocker / "spill")
    query = Query(columns=("id", "value", "note"), order_by=(Order("value"),))
    with pytest.raises(SpillFailed):
        asyncio.run(run(source, query))


def _engine_pids() -> list[int]:
    """The ordering/grouping engine processes this process started."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return [p for p in pids if b"spill_engine.py" in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_an_engine_killed_mid_stream_is_a_failure_not_a_short_result(tmp_path: Path) -> None:
    """Fail closed: rows already handed on stay handed on, but the stream ends in an error,
    never as if the result were complete."""
    source = Generated(300_000)  # five result batches: the engine waits on the pipe after one
    source.spill = SpillConfig(tmp_path)
    query = Query(columns=("id", "value", "note"), order_by=(Order("value"),))

    async def kill_after_the_first_batch() -> int:
        permitted = narrow(query, DataLimits(), await source.schema())
        stream = source.stream(permitted)
        rows = (await anext(stream)).num_rows
        (engine,) = _engine_pids()
        os.kill(engine, signal.SIGKILL)
        async for batch in stream:
            rows += batch.num_rows
        return rows

    with pytest.raises(SpillFailed):
        asyncio.run(kill_after_the_first_batch())
    assert list(tmp_path.iterdir()) == []


def test_ordering_leaves_duckdb_out_of_the_gateway_process(tmp_path: Path) -> None:
    """The engine runs in its own process: after an ordering and a grouping query the
    process that asked has not imported DuckDB (its ~50 MiB would stay for good)."""
    probe = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from connectors import AggFunc, Aggregate, Order, Query
        from connectors.spill import SpillConfig
        from tests.connectors.test_spill import Generated, run

        source = Generated(1000)
        source.spill = SpillConfig(Path(sys.argv[1]))
        ordered = Query(columns=("id", "value"), order_by=(Order("value"),))
        grouped = Query(group_by=("id",), aggregates=(Aggregate(AggFunc.SUM, "value"),))
        print(asyncio.run(run(source, ordered)), asyncio.run(run(source, grouped)))
        print("duckdb" in sys.modules)
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True, text=True, cwd=root, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1000", "1000", "False"]


@pytest.mark.skipif(not Path("/proc/self/oom_score_adj").exists(), reason="needs Linux /proc")
def test_out_of_memory_the_kernel_kills_the_engine_before_the_gateway(tmp_path: Path) -> None:
    source = Generated(300_000)
    source.spill = SpillConfig(tmp_path)
    query = Query(columns=("id", "value", "note"), order_by=(Order("value"),))

    async def engine_score() -> tuple[str, int]:
        permitted = narrow(query, DataLimits(), await source.schema())
        stream = source.stream(permitted)
        rows = (await anext(stream)).num_rows
        (engine,) = _engine_pids()
        score = _oom_score(engine)
        async for batch in stream:
            rows += batch.num_rows
        return score, rows

    assert asyncio.run(engine_score()) == ("1000", 300_000)
    assert list(tmp_path.iterdir()) == []


def _oom_score(pid: int) -> str:
    return Path(f"/proc/{pid}/oom_score_adj").read_text().strip()


def test_engines_beyond_the_cap_wait_for_a_slot(tmp_path: Path) -> None:
    """With ``engines=1`` a second ordering query starts nothing (no directory, no engine)
    while the first one's engine runs; it proceeds, whole, once the first is closed."""
    config = SpillConfig(tmp_path, engines=1)
    first, second = Generated(5000), Generated(5000)
    first.spill = second.spill = config
    query = Query(columns=("id", "value"), order_by=(Order("value"),))

    async def scenario() -> tuple[int, int, int]:
        schema = await first.schema()
        running = first.stream(narrow(query, DataLimits(), schema))
        rows = (await anext(running)).num_rows  # the first engine is running
        waiter = asyncio.create_task(run(second, query))
        for _ in range(2000):  # until the second query waits for the slot (never, uncapped)
            if config.slots.waiting == 1 or waiter.done():
                break
            await asyncio.sleep(0.005)
        assert config.slots.waiting == 1
        assert not waiter.done()
        # only the first query's q-* directory (listed off the loop: ruff's ASYNC240)
        directories = await asyncio.to_thread(lambda: len(list(tmp_path.iterdir())))
        async for batch in running:
            rows += batch.num_rows
        await running.aclose()  # its engine stopped, its slot free
        return rows, directories, await waiter

    rows, directories, second_rows = asyncio.run(scenario())
    assert (rows, directories, second_rows) == (5000, 1, 5000)
    assert config.slots.waiting == 0
    assert not list(tmp_path.glob(f"{PREFIX}*"))  # both directories removed


def test_the_engine_cap_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one engine"):
        SpillConfig(Path("/nonexistent"), engines=0)
