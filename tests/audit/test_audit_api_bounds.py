"""The audit API at its edges: each parameter at its bound and one past it, each refusal's
status, problem type and words, each response's headers, and the bodies made from rows.

The routers run in a small app (ASGI, no socket) over a log on SQLite, the role check
overridden as in test_endpoints.py; the query models and bodies are also checked alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.audit import endpoints, export_api
from gateway.audit.endpoints import CountQuery, EntryQuery
from gateway.audit.entry import Actor
from gateway.audit.errors import ProofError
from gateway.audit.export_api import ExportQuery
from gateway.audit.log import AuditLog
from gateway.audit.records import ConsistencyProof, InclusionProof
from gateway.audit.repository import EntryFilter
from gateway.audit.schemas import ActivityOut, ConsistencyOut, CountsOut, InclusionOut
from gateway.errors import BadRequest, GatewayError, NotFound
from tests.audit.logs import opened, sample
from tests.audit.test_endpoints import _app, _client
from tests.support.databases import database_url

PROBLEM = "urn:sluis:problem:"
INVALID = PROBLEM + "validation-error"
TOP = 2**63 - 1  # the largest index or size a parameter takes (a signed 64-bit column)
Scenario = Callable[[AuditLog, httpx.AsyncClient], Awaitable[None]]


def _officer_app(audit: object) -> FastAPI:
    app = _app(audit, "officer")
    app.include_router(export_api.router)
    return app


def _on_a_log(tmp_path: Path, scenario: Scenario, size: int = 6) -> None:
    """``scenario`` against an officer's client, over a log of ``size`` entries and one
    checkpoint of them all."""

    async def run(url: str) -> None:
        async with opened(url, sign_batches=False) as log:
            for n in range(size):
                await log.append(sample(n))
            if size:
                await log.checkpoint_now()
            async with _client(_officer_app(log)) as client:
                await scenario(log, client)

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(run(url))


async def _refused(
    client: httpx.AsyncClient, path: str, status: int, kind: str, detail: str | None = None
) -> dict[str, Any]:
    """The problem+json refusal of ``path``: its status, type and (if given) exact detail."""
    got = await client.get(path)
    assert got.status_code == status, (path, got.text)
    assert got.headers["content-type"] == "application/problem+json", path
    body: dict[str, Any] = got.json()
    assert body["type"] == kind, (path, body)
    if detail is not None:
        assert body["detail"] == detail, (path, body)
    return body


async def _indices(client: httpx.AsyncClient, path: str) -> list[int]:
    got = await client.get(path)
    assert got.status_code == 200, (path, got.text)
    return [e["index"] for e in got.json()["entries"]]


def test_the_checkpoint_is_the_note_itself_and_at_least_takes_every_size(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        newest = await client.get("/v1/audit/checkpoint")
        assert newest.headers["content-type"] == "text/plain; charset=utf-8"
        assert newest.headers["cache-control"] == "no-store"
        assert newest.content == (await log.current_checkpoint()).note
        smallest = await client.get("/v1/audit/checkpoint?at_least=0")
        assert smallest.status_code == 200
        assert smallest.content == newest.content
        assert smallest.headers["content-type"] == "text/plain; charset=utf-8"
        assert smallest.headers["cache-control"] == "no-store"
        for size in (7, TOP):
            await _refused(
                client,
                f"/v1/audit/checkpoint?at_least={size}",
                404,
                PROBLEM + "size-out-of-range",
                f"no checkpoint of {size} entries yet",
            )
        for size in (-1, TOP + 1):
            await _refused(client, f"/v1/audit/checkpoint?at_least={size}", 422, INVALID)

    _on_a_log(tmp_path, scenario)


def test_proofs_at_the_bounds_of_their_parameters(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        del log
        got = (await client.get("/v1/audit/proofs/inclusion?index=5&tree_size=6")).json()
        assert (got["index"], got["tree_size"], len(got["hashes"])) == (5, 6, 2)
        got = (await client.get("/v1/audit/proofs/consistency?size1=1&size2=6")).json()
        assert (got["size1"], got["size2"], len(got["hashes"])) == (1, 6, 3)
        first = (await client.get("/v1/audit/proofs/inclusion?index=0&tree_size=1")).json()
        assert (first["tree_size"], first["hashes"]) == (1, [])
        inclusion = "/v1/audit/proofs/inclusion"
        consistency = "/v1/audit/proofs/consistency"
        for path, kind in [
            (f"{inclusion}?index=6&tree_size=6", "index-out-of-range"),  # not in that tree
            (f"{inclusion}?index={TOP}&tree_size=6", "index-out-of-range"),
            (f"{inclusion}?index=0&tree_size={TOP}", "size-out-of-range"),  # not reached
            (f"{consistency}?size1=4&size2=3", "size-out-of-range"),
            (f"{consistency}?size1=1&size2={TOP}", "size-out-of-range"),
        ]:
            await _refused(client, path, 404, PROBLEM + kind)
        for path in [
            f"{inclusion}?index=0&tree_size=0",  # a proof needs a tree of one entry at least
            f"{inclusion}?index={TOP + 1}&tree_size=6",
            f"{inclusion}?index=0&tree_size={TOP + 1}",
            f"{consistency}?size1=0&size2=6",  # not the empty tree's "proof" (a 400 below)
            f"{consistency}?size1=1&size2=0",
            f"{consistency}?size1={TOP + 1}&size2=6",
        ]:
            await _refused(client, path, 422, INVALID)

    _on_a_log(tmp_path, scenario)


def test_a_proof_refusal_is_404_only_for_what_is_not_there_yet() -> None:
    for code in ("size-out-of-range", "index-out-of-range"):
        refusal: GatewayError = endpoints._refusal(ProofError(code, "the detail"))
        assert type(refusal) is NotFound
        assert (refusal.code, refusal.detail) == (code, "the detail")
    refusal = endpoints._refusal(ProofError("empty-tree", "nothing to prove"))
    assert type(refusal) is BadRequest
    assert (refusal.code, refusal.detail) == ("empty-tree", "nothing to prove")


def test_one_entry_by_index_at_the_bounds(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        for index in (0, 5):  # the first and the last
            got = await client.get(f"/v1/audit/entries/{index}")
            assert got.status_code == 200, index
            assert got.content == (await log.entry_range(index, index + 1))[0].data
        for index in (6, TOP - 1):
            await _refused(
                client,
                f"/v1/audit/entries/{index}",
                404,
                PROBLEM + "entry-not-found",
                f"no entry {index} in the log",
            )
        await _refused(client, f"/v1/audit/entries/{TOP}", 422, INVALID)

    _on_a_log(tmp_path, scenario)


def test_entries_paged_at_the_bounds_of_each_parameter(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        del log
        assert await _indices(client, "/v1/audit/entries?after=-1") == [0, 1, 2, 3, 4, 5]
        assert await _indices(client, f"/v1/audit/entries?after={TOP}") == []
        assert await _indices(client, "/v1/audit/entries?before=0") == []
        assert await _indices(client, f"/v1/audit/entries?before={TOP}") == [0, 1, 2, 3, 4, 5]
        one = (await client.get("/v1/audit/entries?limit=1")).json()
        assert ([e["index"] for e in one["entries"]], one["next_after"]) == ([0], 0)
        assert (one["next_before"], one["next_cursor"]) == (None, None)
        whole = (await client.get("/v1/audit/entries?limit=1000")).json()
        assert (len(whole["entries"]), whole["next_after"]) == (6, None)  # a short page: last
        exact = (await client.get("/v1/audit/entries?limit=6")).json()
        assert exact["next_after"] == 5  # a full page: the next one may hold more
        newest = (await client.get("/v1/audit/entries?order=desc&limit=2")).json()
        assert (newest["next_after"], newest["next_before"], newest["next_cursor"]) == (
            None,
            4,
            None,
        )
        sorted_page = (await client.get("/v1/audit/entries?sort=time&limit=6")).json()
        assert (sorted_page["next_after"], sorted_page["next_before"]) == (None, None)
        assert sorted_page["next_cursor"] is not None
        short = (await client.get("/v1/audit/entries?sort=time&limit=7")).json()
        assert (len(short["entries"]), short["next_cursor"]) == (6, None)
        for query in [
            "limit=0",
            "limit=1001",
            "after=-2",
            f"after={TOP + 1}",
            "before=-1",
            f"before={TOP + 1}",
            "unknown=1",  # a misspelt filter is refused, never ignored (all entries)
            "order=DESC",
            "decision=error",
        ]:
            await _refused(client, f"/v1/audit/entries?{query}", 422, INVALID)

    _on_a_log(tmp_path, scenario)


@pytest.mark.parametrize(
    ("name", "longest"),
    [
        ("participant", 512),
        ("dataset", 512),
        ("target", 512),
        ("trace_id", 512),
        ("request_id", 512),
        ("agreement", 256),
    ],
)
def test_a_text_filter_takes_its_longest_value_and_refuses_one_more(
    name: str, longest: int
) -> None:
    assert getattr(EntryQuery.model_validate({name: "x" * longest}), name) == "x" * longest
    with pytest.raises(ValueError, match="at most"):
        EntryQuery.model_validate({name: "x" * (longest + 1)})


def test_text_filters_at_their_longest_over_http(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        del log
        for name in ("participant", "dataset", "target", "trace_id", "request_id"):
            assert await _indices(client, f"/v1/audit/entries?{name}={'x' * 512}") == []
            await _refused(client, f"/v1/audit/entries?{name}={'x' * 513}", 422, INVALID)
        assert await _indices(client, f"/v1/audit/entries?agreement={'x' * 256}") == []
        await _refused(client, f"/v1/audit/entries?agreement={'x' * 257}", 422, INVALID)
        # the same agreement named twice, as agreement and as target: no conflict
        assert await _indices(client, "/v1/audit/entries?agreement=a1&target=agreement:a1") == []
        await _refused(
            client,
            "/v1/audit/entries?agreement=a1&target=agreement:a2",
            400,
            PROBLEM + "conflicting-filters",
            "give agreement or target, not both",
        )
        await _refused(
            client,
            "/v1/audit/entries?cursor=abc",
            400,
            PROBLEM + "bad-cursor",
            "sorted by index, page with after or before",
        )
        await _refused(client, f"/v1/audit/entries?sort=time&cursor={'A' * 2049}", 422, INVALID)
        await _refused(
            client,
            "/v1/audit/entries?sort=time&cursor=not-a-cursor!",
            400,
            PROBLEM + "bad-cursor",
            "not a cursor of this API",
        )
        await _refused(
            client,
            "/v1/audit/entries?until=1700000000",
            422,
            INVALID,
            "query.until: Value error, a date-time with a time zone, e.g. 2026-12-02T10:00:00Z",
        )

    _on_a_log(tmp_path, scenario)


def test_the_entry_query_defaults_and_the_filter_it_gives() -> None:
    query = EntryQuery()
    assert (query.order, query.limit, query.sort) == ("asc", 100, "index")
    assert query.filter() == EntryFilter()
    since = datetime(2026, 12, 2, 10, tzinfo=UTC)
    given = EntryQuery.model_validate(
        {
            "since": "2026-12-02T10:00:00Z",
            "until": "2026-12-02T11:00:00+00:00",
            "participant": "p",
            "dataset": "d",
            "decision": "deny",
            "event": "token-refused",
            "after": 3,
            "before": 9,
            "order": "desc",
            "limit": 5,
            "agreement": "a1",
            "trace_id": "t",
            "request_id": "r",
        }
    )
    assert given.filter() == EntryFilter(
        since=since,
        until=datetime(2026, 12, 2, 11, tzinfo=UTC),
        participant="p",
        dataset="d",
        decision="deny",
        after=3,
        limit=5,
        event="token-refused",
        before=9,
        newest_first=True,
        target="agreement:a1",
        trace_id="t",
        request_id="r",
    )
    assert EntryQuery(target="/v1/x").filter().target == "/v1/x"


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-02T10:00:00Z",
        "2026-12-02t10:00z",
        "2026-12-02 10:00:00.5+01:00",
        "2026-12-02T10:00:00-0130",
    ],
)
def test_a_time_with_its_zone_is_read(value: str) -> None:
    assert CountQuery.model_validate({"since": value}).since is not None


@pytest.mark.parametrize(
    "value",
    ["0.5", "1700000000", "2026-12-02T10:00:00", "2026-12-02", "x2026-12-02T10:00:00Z"],
)
def test_a_time_without_its_zone_is_refused_in_words(value: str) -> None:
    with pytest.raises(ValueError, match=r"a date-time with a time zone, e\.g\. 2026-12-02T10"):
        CountQuery.model_validate({"until": value})


def test_the_query_models_refuse_unknown_parameters() -> None:
    for model in (EntryQuery, CountQuery, ExportQuery):
        with pytest.raises(ValueError, match="Extra inputs are not permitted"):
            model.model_validate({"unknown": "1"})


def test_counts_and_activity_refuse_unknown_parameters(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        del log
        for path in ("/v1/audit/counts", "/v1/audit/activity", "/v1/audit/export"):
            await _refused(client, f"{path}?unknown=1", 422, INVALID)
        for path in ("/v1/audit/counts", "/v1/audit/activity"):
            await _refused(client, f"{path}?since=2026-12-02", 422, INVALID)

    _on_a_log(tmp_path, scenario, size=1)


def test_activity_names_the_five_busiest_consumers_of_a_dataset(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        for n in range(7):  # seven consumers, consumer k reads k + 1 times
            for _ in range(n + 1):
                actor = Actor(participant=f"NTRNL-1000000{n}")
                await log.append(sample(0, actor=actor, dataset="busy"))
        got = await client.get("/v1/audit/activity")
        assert got.headers["cache-control"] == "no-store"  # audit data: not cached
        (busy, *_) = got.json()["datasets"]
        assert busy["dataset"] == "busy"
        assert [c["participant"] for c in busy["top_consumers"]] == [
            f"NTRNL-1000000{n}" for n in (6, 5, 4, 3, 2)
        ]
        assert busy["top_consumers"][0]["count"] == 7

    _on_a_log(tmp_path, scenario, size=0)


def test_no_audit_log_is_503_with_its_own_problem() -> None:
    async def run() -> None:
        for services in (SimpleNamespace(), SimpleNamespace(audit=object())):
            app = _app(None, "consumer")
            app.state.services = services
            async with _client(app) as client:
                await _refused(
                    client,
                    "/v1/audit/checkpoint",
                    503,
                    PROBLEM + "audit-unavailable",
                    "the audit log is not running",
                )

    asyncio.run(run())


def test_each_export_format_has_its_media_type_and_file_name(tmp_path: Path) -> None:
    async def scenario(log: AuditLog, client: httpx.AsyncClient) -> None:
        del log
        for fmt, media_type, name in [
            ("jsonl", "application/jsonl", "sluis-audit-1-3.jsonl"),
            ("ocsf", "application/jsonl", "sluis-audit-1-3.ocsf.jsonl"),
            ("syslog", "text/plain; charset=utf-8", "sluis-audit-1-3.syslog.log"),
            ("bundle", "application/zip", "sluis-audit-1-6.zip"),  # on to the checkpoint
        ]:
            got = await client.get(f"/v1/audit/export?format={fmt}&start=1&end=3")
            assert got.status_code == 200, (fmt, got.text)
            assert got.headers["content-type"] == media_type, fmt
            assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
            assert got.headers["cache-control"] == "no-store"
            assert got.headers["x-content-type-options"] == "nosniff"
        empty = await client.get("/v1/audit/export?start=6&end=6")
        assert (empty.status_code, empty.content) == (200, b"")
        assert "sluis-audit-6-6.jsonl" in empty.headers["content-disposition"]
        whole = await client.get("/v1/audit/export?end=0")
        assert "sluis-audit-0-0.jsonl" in whole.headers["content-disposition"]
        for query in ("start=7", f"start={TOP}", f"end={TOP}", "start=1&end=0"):
            await _refused(
                client,
                f"/v1/audit/export?{query}",
                404,
                PROBLEM + "range-out-of-range",
                "the log holds 6 entries: give 0 <= start <= end <= 6",
            )
        for query in ("start=-1", "end=-1", f"start={TOP + 1}", f"end={TOP + 1}", "format=csv"):
            await _refused(client, f"/v1/audit/export?{query}", 422, INVALID)

    _on_a_log(tmp_path, scenario)


def test_the_export_query_defaults_to_the_whole_log_as_json_lines() -> None:
    query = ExportQuery()
    assert (query.format, query.start, query.end) == ("jsonl", 0, None)


def test_counts_from_rows_sum_events_and_skip_what_has_no_decision() -> None:
    rows: list[tuple[str, str | None, int]] = [
        ("access-decision", "permit", 3),
        ("access-decision", "deny", 2),
        ("admin-change", None, 4),
        ("token-refused", "deny", 1),
    ]
    assert CountsOut.of(rows) == CountsOut(
        total=10,
        events={"access-decision": 5, "admin-change": 4, "token-refused": 1},
        decisions={"permit": 3, "deny": 3},
    )
    assert CountsOut.of([]) == CountsOut(total=0, events={}, decisions={})


def test_activity_from_rows_busiest_dataset_and_consumer_first() -> None:
    rows: list[tuple[str, str, str | None, int]] = [
        ("b", "p2", "permit", 2),
        ("b", "p1", "permit", 1),
        ("b", "p1", "deny", 1),  # p1 as busy as p2: by name, p1 first
        ("b", "p3", None, 1),  # no decision recorded: counted as a denial, added to b's
        ("a", "p9", "deny", 5),  # as busy as b: by name, a first
        ("c", "p1", "permit", 1),
        ("c", "p2", "deny", 3),
    ]
    got = ActivityOut.of(rows, top=2).model_dump()
    assert got == {
        "datasets": [
            {
                "dataset": "a",
                "permit": 0,
                "deny": 5,
                "top_consumers": [{"participant": "p9", "count": 5}],
            },
            {
                "dataset": "b",
                "permit": 3,
                "deny": 2,
                "top_consumers": [
                    {"participant": "p1", "count": 2},
                    {"participant": "p2", "count": 2},
                ],
            },
            {
                "dataset": "c",
                "permit": 1,
                "deny": 3,
                "top_consumers": [
                    {"participant": "p2", "count": 3},
                    {"participant": "p1", "count": 1},
                ],
            },
        ]
    }
    assert ActivityOut.of(rows, top=1).datasets[1].top_consumers[0].participant == "p1"


def test_proof_bodies_carry_their_sizes_and_base64_hashes() -> None:
    inclusion = InclusionOut.of(InclusionProof(2, 5, b"\x00" * 32, (b"\x01" * 32, b"\xff" * 32)))
    assert inclusion.model_dump() == {
        "index": 2,
        "tree_size": 5,
        "leaf_hash": "A" * 43 + "=",
        "hashes": ["AQEB" * 10 + "AQE=", "/" * 42 + "8="],
    }
    consistency = ConsistencyOut.of(ConsistencyProof(3, 7, (b"\x01" * 32,)))
    assert consistency.model_dump() == {"size1": 3, "size2": 7, "hashes": ["AQEB" * 10 + "AQE="]}
