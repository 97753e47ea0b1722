"""Entries sorted by each indexed column, paged by keyset cursor, filtered by what they touch.

On SQLite and PostgreSQL: every sort pages through the whole log without a gap or a repeat,
in the order Python sorts the same entries (a missing value first when ascending); the
filters by agreement, target, trace id and request id (migration 0019) combine with it; a
cursor that is not this sort's is a 400, never another page.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.audit.entry import Actor, DecisionRecord
from gateway.audit.jcs import canonical
from gateway.storage.db import Database
from tests.audit.logs import NOW, opened, sample
from tests.audit.test_endpoints import _app, _client
from tests.gateway.test_agreement_uses import _migrate
from tests.support.databases import database_url

SORTS = ["time", "event", "participant", "dataset", "decision"]
PROBLEM = "urn:sluis:problem:"


def _entry(n: int) -> Any:
    """Twelve entries with ties and missing values in every sortable column."""
    fields: dict[str, Any] = {"time": NOW + timedelta(hours=(n * 7) % 5)}
    if n % 5 == 0:
        fields["actor"] = Actor()  # no participant
    if n % 4 == 1:
        fields["dataset"] = None
    if n % 6 == 2:
        fields |= {"event": "admin-change", "decision": None}
    if n % 3 == 0:
        fields["target"] = f"agreement:a{n % 2}"
    if n in (4, 5):  # a decision and its completion: one exchange, one trace
        fields |= {"request_id": "exchange-45", "trace_id": "0af7651916cd43dd8448eb211c80319c"}
    if n == 5:
        fields |= {
            "event": "exchange-completed",
            "decision": DecisionRecord(result="permit", reasons=("ok",)),
        }
    return sample(n, **fields)


def _value(entry: dict[str, Any], sort: str) -> str | None:
    if sort == "participant":
        return entry.get("actor", {}).get("participant")
    if sort == "decision":
        return (entry.get("decision") or {}).get("result")
    return entry.get(sort)


def _expected(entries: list[dict[str, Any]], sort: str, order: str) -> list[int]:
    def key(index: int) -> tuple[bool, str, int]:
        value = _value(entries[index], sort)
        return (value is not None, value or "", index)

    ascending = sorted(range(len(entries)), key=key)
    return ascending[::-1] if order == "desc" else ascending


async def _walk(client: httpx.AsyncClient, **params: Any) -> list[int]:
    """Every page of a sorted listing, following next_cursor; indices in order."""
    seen: list[int] = []
    cursor = None
    for _ in range(50):
        query = params | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/audit/entries", params=query)).json()
        seen += [e["index"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


async def _scenario(url: str) -> None:
    async with opened(url) as log:
        for n in range(12):
            await log.append(_entry(n))
        entries = [r.json() for r in await log.entry_range(0, 12)]
        async with _client(_app(log, "officer")) as client:
            for sort in SORTS:
                for order in ("asc", "desc"):
                    got = await _walk(client, sort=sort, order=order, limit=5)
                    assert got == _expected(entries, sort, order), (sort, order)
            # filters by what an entry touched, its trace and its exchange
            agreement = await _walk(client, sort="time", agreement="a1", limit=1)
            assert sorted(agreement) == [3, 9]
            target = await client.get("/v1/audit/entries", params={"target": "agreement:a0"})
            assert [e["index"] for e in target.json()["entries"]] == [0, 6]
            exchange = await client.get("/v1/audit/entries", params={"request_id": "exchange-45"})
            assert [e["entry"]["event"] for e in exchange.json()["entries"]] == [
                "access-decision",
                "exchange-completed",
            ]
            trace = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "order": "desc"}
            assert [e["index"] for e in (await client.get("/v1/audit/entries", params=trace))
                    .json()["entries"]] == [5, 4]  # fmt: skip
            # a sort combined with a filter still pages through every match
            denied = await _walk(client, sort="participant", order="desc", decision="deny", limit=1)
            want = [i for i in _expected(entries, "participant", "desc") if _value(
                entries[i], "decision") == "deny"]  # fmt: skip
            assert denied == want
            await _refusals(client)


async def _refusals(client: httpx.AsyncClient) -> None:
    first = (await client.get("/v1/audit/entries?sort=time&limit=1")).json()
    cursor = first["next_cursor"]
    assert first["next_after"] is None
    cases = {
        "cursor=not-a-cursor!&sort=time": "bad-cursor",
        f"cursor={cursor}&sort=event": "bad-cursor",  # another sort's cursor
        f"cursor={cursor}&sort=time&order=desc": "bad-cursor",  # another direction's
        f"cursor={cursor}": "bad-cursor",  # sorted by index: after / before page
        "agreement=a1&target=agreement:a2": "conflicting-filters",
    }
    forged = canonical(["time", "asc", "yesterday", 3])
    import base64  # noqa: PLC0415 - only here

    cases[f"sort=time&cursor={base64.urlsafe_b64encode(forged).decode()}"] = "bad-cursor"
    for query, code in cases.items():
        refused = await client.get(f"/v1/audit/entries?{query}")
        assert refused.status_code == 400, query
        assert refused.json()["type"] == PROBLEM + code, query
    assert (await client.get("/v1/audit/entries?sort=leaf_hash")).status_code == 422
    assert (await client.get("/v1/audit/entries?cursor=" + "A" * 3000)).status_code == 422


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_sorted_and_linked_entries(tmp_path: Path, backend: str) -> None:
    with database_url(backend, tmp_path) as url:
        asyncio.run(_scenario(url))


_ROWS = sa.table(
    "audit_entries",
    *(sa.column(c) for c in ("idx", "entry", "leaf_hash", "time", "event")),
    *(sa.column(c) for c in ("target", "trace_id", "request_id")),
)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_migration_0019_fills_the_link_columns(tmp_path: Path, backend: str) -> None:
    """Entries written before 0019 get target, trace id and request id from their bytes."""
    written = [_entry(n).to_json() for n in range(6)]
    written.append(sample(6, target="/v1/\x00").to_json())  # NUL: U+FFFD in the column

    async def run(url: str) -> None:
        db = Database(url)
        try:
            await _migrate(db, "0011")
            async with db.session() as session:
                for n, entry in enumerate(written):
                    row = {"idx": n, "entry": canonical(entry), "leaf_hash": bytes(32)}
                    row |= {"time": NOW, "event": entry["event"]}
                    await session.execute(sa.insert(_ROWS).values(**row))
            await _migrate(db, "head")
            async with db.session() as session:
                stmt = sa.select(_ROWS.c.target, _ROWS.c.trace_id, _ROWS.c.request_id)
                got = (await session.execute(stmt.order_by(_ROWS.c.idx))).all()
            want = [(e.get("target"), e.get("trace_id"), e.get("request_id")) for e in written]
            want[6] = ("/v1/\ufffd", None, "req-6")
            assert [tuple(r) for r in got] == want
            assert want[0][0] == "agreement:a0"
            assert want[4][1:] == ("0af7651916cd43dd8448eb211c80319c", "exchange-45")
        finally:
            await db.dispose()

    with database_url(backend, tmp_path) as url:
        asyncio.run(run(url))


async def _nul_scenario(url: str) -> None:
    async with opened(url) as log:
        # caller text with NUL (a refused request's path): PostgreSQL's text cannot hold it
        fields = {"target": "/v1/datasets/\x00x", "request_id": "r\x00", "dataset": "d\x00"}
        await log.append(sample(0, **fields))
        await log.append(sample(1, trace_id="t\x00"))
        (stored,) = await log.entry_range(0, 1)
        assert stored.json()["target"] == "/v1/datasets/\x00x"  # the entry keeps it exactly
        async with _client(_app(log, "officer")) as client:
            for name, value, index in [
                ("target", "/v1/datasets/\x00x", 0),
                ("request_id", "r\x00", 0),
                ("dataset", "d\x00", 0),
                ("trace_id", "t\x00", 1),
                ("participant", "\x00", None),
            ]:
                page = await client.get("/v1/audit/entries", params={name: value})
                assert page.status_code == 200, (name, page.text)
                found = [e["index"] for e in page.json()["entries"]]
                assert found == ([] if index is None else [index]), name


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_nul_in_caller_text_is_written_and_found(tmp_path: Path, backend: str) -> None:
    with database_url(backend, tmp_path) as url:
        asyncio.run(_nul_scenario(url))


async def _written_links_scenario(url: str) -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlYWJj"
    async with opened(url) as log:
        await log.append(sample(0, target=f"/v1/{token}", trace_id="t\ud800", request_id="r0"))
        await log.append(sample(1, target="agreement:a1", trace_id="t1", request_id="r1"))
        async with log.db.session() as session:
            stmt = sa.select(_ROWS.c.target, _ROWS.c.trace_id, _ROWS.c.request_id)
            got = [tuple(r) for r in (await session.execute(stmt.order_by(_ROWS.c.idx))).all()]
        written = [record.json() for record in await log.entry_range(0, 2)]
    assert got[0] == (written[0]["target"], written[0]["trace_id"], "r0")
    assert got[0][0] == "/v1/[redacted]"
    assert got[0][1] == "t\\ud800"
    assert got[1] == ("agreement:a1", "t1", "r1")  # nothing to fix: as given


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_link_columns_hold_the_written_text_never_the_raw(tmp_path: Path, backend: str) -> None:
    """The link columns (target, trace id, request id) take what the entry's bytes hold: a
    token redacted, a lone surrogate escaped; an entry with nothing to fix, its own text."""
    with database_url(backend, tmp_path) as url:
        asyncio.run(_written_links_scenario(url))
