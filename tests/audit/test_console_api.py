"""The audit API the console needs: an entry's stored bytes, counts by period, event filter.

On SQLite and PostgreSQL: the counts are SQL aggregates and the event filter a WHERE.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit.encoding import decode_base64
from gateway.audit.merkle import leaf_hash
from tests.audit.logs import NOW, opened, sample
from tests.audit.test_endpoints import _app, _client
from tests.support.databases import database_url


async def _scenario(url: str) -> None:
    async with opened(url) as log:
        for n in range(6):
            await log.append(sample(n, time=NOW + timedelta(hours=n)))
        await log.append(sample(6, event="token-refused", time=NOW + timedelta(hours=6)))
        async with _client(_app(log, "officer")) as client:
            # the stored canonical bytes, byte for byte: what the inclusion proof's leaf is
            raw = await client.get("/v1/audit/entries/2")
            assert raw.status_code == 200
            assert raw.headers["content-type"] == "application/json"
            assert raw.headers["cache-control"] == "no-store"
            proof = (await client.get("/v1/audit/proofs/inclusion?index=2&tree_size=7")).json()
            assert leaf_hash(raw.content) == decode_base64(proof["leaf_hash"])
            assert raw.content == (await log.entry_range(2, 3))[0].data
            missing = await client.get("/v1/audit/entries/7")
            assert missing.status_code == 404
            assert missing.json()["type"] == "urn:sluis:problem:entry-not-found"
            assert (await client.get("/v1/audit/entries/-1")).status_code == 422

            for path in ("/v1/audit/counts", "/v1/audit/entries"):  # audit data: not cached
                assert (await client.get(path)).headers["cache-control"] == "no-store"
            counts = (await client.get("/v1/audit/counts")).json()
            assert counts == {
                "total": 7,
                "events": {"access-decision": 6, "token-refused": 1},
                "decisions": {"permit": 5, "deny": 2},
            }
            window = {"since": "2026-11-27T13:00:00Z", "until": "2026-11-27T16:00:00+00:00"}
            counts = (await client.get("/v1/audit/counts", params=window)).json()
            assert counts["total"] == 3  # hours 1, 2, 3: [since, until)
            assert counts["decisions"] == {"permit": 3}
            naive = await client.get("/v1/audit/counts?since=2026-11-27T00:00:00")
            assert naive.status_code == 422

            activity = (await client.get("/v1/audit/activity")).json()["datasets"]
            assert [(d["dataset"], d["permit"], d["deny"]) for d in activity] == [
                ("ds0", 1, 2),  # entries 0, 2, 4 (0 and 4 denied); 6 is no access decision
                ("ds1", 3, 0),
            ]
            assert activity[0]["top_consumers"][0] == {"participant": "NTRNL-00000000", "count": 1}
            window = {"since": "2026-11-27T15:00:00Z"}  # entries 3, 4, 5
            activity = (await client.get("/v1/audit/activity", params=window)).json()
            assert [(d["dataset"], d["permit"], d["deny"]) for d in activity["datasets"]] == [
                ("ds1", 2, 0),
                ("ds0", 0, 1),
            ]
            newest = (await client.get("/v1/audit/entries?order=desc&limit=3")).json()
            assert [e["index"] for e in newest["entries"]] == [6, 5, 4]
            assert (newest["next_after"], newest["next_before"]) == (None, 4)
            older = await client.get("/v1/audit/entries?order=desc&limit=3&before=4")
            assert [e["index"] for e in older.json()["entries"]] == [3, 2, 1]
            denied = await client.get("/v1/audit/entries?order=desc&decision=deny")
            assert [e["index"] for e in denied.json()["entries"]] == [4, 0]
            assert denied.json()["next_before"] is None  # a short page is the last
            assert (await client.get("/v1/audit/entries?order=up")).status_code == 422
            page = (await client.get("/v1/audit/entries?event=token-refused")).json()
            assert [e["index"] for e in page["entries"]] == [6]
            bad = await client.get("/v1/audit/entries?event=<script>")
            assert bad.status_code == 422
        async with _client(_app(log, "consumer")) as client:
            for path in ("/v1/audit/entries/0", "/v1/audit/counts", "/v1/audit/activity"):
                refused = await client.get(path)
                assert refused.status_code == 403
                assert refused.json()["type"] == "urn:sluis:problem:role-required"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_console_api(tmp_path: Path, backend: str) -> None:
    with database_url(backend, tmp_path) as url:
        asyncio.run(_scenario(url))
