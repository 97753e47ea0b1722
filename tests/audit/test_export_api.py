"""``GET /v1/audit/export``: ranges as JSON lines, OCSF, syslog and a bundle that
``sluis audit verify`` checks offline, including a range that starts mid-log and one
that crosses a key hand-over; a tampered bundle fails with the check that caught it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from gateway.audit import export_api
from gateway.audit.bundle import read_bundle
from gateway.audit.errors import VerificationError
from gateway.audit.identity import establish
from gateway.audit.log import AuditLog
from gateway.audit.rotation import rotate_key
from gateway.storage.db import Database
from tests.audit.logs import NOW, ORIGIN, SIGNER, opened, sample
from tests.audit.test_cli import KEY, cli
from tests.audit.test_endpoints import _app as _audit_app
from tests.audit.test_endpoints import _client
from tests.audit.test_handover import CONFIGURED, NEW, _grow
from tests.support.databases import database_url

PROBLEM = "urn:sluis:problem:"


def _app(audit: object, *roles: str) -> FastAPI:
    app = _audit_app(audit, *roles)
    app.include_router(export_api.router)
    return app


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _verify(bundle: bytes, directory: Path, *keys: str) -> tuple[int, str]:
    path = directory / "bundle.zip"
    path.write_bytes(bundle)
    args = ["audit", "verify", str(path)]
    for key in keys or (KEY,):
        args += ["--key", key]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


def _replace(bundle: bytes, name: str, data: bytes | None) -> bytes:
    """The bundle with member ``name`` replaced (or, with None, left out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            if info.filename != name:
                new.writestr(info.filename, old.read(info.filename))
        if data is not None:
            new.writestr(name, data)
    return out.getvalue()


async def _formats(client: httpx.AsyncClient) -> None:
    got = await client.get("/v1/audit/export", params={"start": 3, "end": 10})
    assert got.status_code == 200
    assert got.headers["content-disposition"] == 'attachment; filename="sluis-audit-3-10.jsonl"'
    assert got.headers["cache-control"] == "no-store"
    lines = got.text.splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(3, 10))
    ocsf = await client.get("/v1/audit/export", params={"format": "ocsf", "start": 3, "end": 5})
    assert [json.loads(line)["metadata"]["sequence"] for line in ocsf.text.splitlines()] == [3, 4]
    syslog = await client.get("/v1/audit/export", params={"format": "syslog", "end": 2})
    assert syslog.headers["content-type"].startswith("text/plain")
    assert [line[:4] for line in syslog.text.splitlines()] == ["<108", "<110"]  # deny, permit
    everything = await client.get("/v1/audit/export")
    assert len(everything.text.splitlines()) == 23
    for params, code, status in [
        ({"start": 5, "end": 4}, "range-out-of-range", 404),
        ({"end": 24}, "range-out-of-range", 404),
        ({"format": "bundle", "start": 0, "end": 23}, "range-not-signed", 409),
    ]:
        refused = await client.get("/v1/audit/export", params=params)
        assert refused.status_code == status, params
        assert refused.json()["type"] == PROBLEM + code
    assert (await client.get("/v1/audit/export?format=csv")).status_code == 422


def test_export_formats_and_bundles_that_verify(url: str, tmp_path: Path) -> None:
    async def fill() -> tuple[bytes, bytes]:
        async with opened(url, sign_batches=False) as log:
            for n in range(23):
                await log.append(sample(n))
                if n + 1 in {5, 13, 21}:
                    await log.checkpoint_now()
            async with _client(_app(log, "officer")) as client:
                await _formats(client)
                whole = await client.get("/v1/audit/export?format=bundle&end=21")
                middle = await client.get("/v1/audit/export?format=bundle&start=7&end=9")
                assert middle.headers["content-type"] == "application/zip"
                name = 'attachment; filename="sluis-audit-7-13.zip"'  # on to a checkpoint
                assert middle.headers["content-disposition"] == name
            async with _client(_app(log, "consumer")) as client:
                assert (await client.get("/v1/audit/export")).status_code == 403
            return whole.content, middle.content

    whole, middle = asyncio.run(fill())
    code, output = _verify(whole, tmp_path)
    assert (code, output.split(";")[0]) == (0, "ok: 21 entries, 1 checkpoints"), output
    entries, checkpoints, start = read_bundle(middle)
    assert start is not None
    assert (start.index, len(start.frontier)) == (7, 3)  # 4 + 2 + 1
    assert [json.loads(line)["index"] for line in entries] == list(range(7, 13))
    assert [json.loads(line)["size"] for line in checkpoints] == [13]
    code, output = _verify(middle, tmp_path)
    assert code == 0, output
    assert "latest size 13" in output

    forged = entries[2].replace('"r9"', '"r0"')
    assert forged != entries[2]
    tampered = {
        "an entry": (
            _replace(
                middle, "entries.jsonl", "\n".join([*entries[:2], forged, *entries[3:]]).encode()
            ),
            "the first 13 entries do not rebuild the signed root",
        ),
        "the frontier": (
            _replace(middle, "start.json", _frontier_of(middle, 1)),
            "do not rebuild the signed root",
        ),
        "an unsigned tail": (
            _replace(
                middle, "entries.jsonl", "\n".join([*entries, _next_line(entries[-1])]).encode()
            ),
            "a range export must end at a signed checkpoint",
        ),
        "no start": (_replace(middle, "start.json", None), "entry 0 of the export has index 7"),
        "a short frontier": (
            _replace(middle, "start.json", b'{"frontier":[],"index":7}'),
            "not the frontier of 7",
        ),
        "not a zip": (b"PK\x03\x04 not really", "not a readable bundle"),
    }
    for what, (bundle, message) in tampered.items():
        code, output = _verify(bundle, tmp_path)
        assert code != 0, what
        assert message in output, (what, output)


def _next_line(line: str) -> str:
    """An entry line for the index after ``line``'s, which no checkpoint covers."""
    record = json.loads(line)
    return json.dumps({"index": record["index"] + 1, "entry": record["entry"]})


def _frontier_of(bundle: bytes, which: int) -> bytes:
    """The bundle's start.json with every frontier hash replaced by hash ``which``."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as opened_zip:
        start = json.loads(opened_zip.read("start.json"))
    start["frontier"] = [start["frontier"][which]] * len(start["frontier"])
    return json.dumps(start).encode()


def test_a_range_bundle_follows_a_key_hand_over(url: str, tmp_path: Path) -> None:
    async def scenario() -> bytes:
        db = Database(url)
        await db.upgrade()
        try:
            identity = await establish(db, CONFIGURED, now=NOW)
            await _grow(db, SIGNER, 5)
            await rotate_key(db, identity, SIGNER, NEW, now=NOW)
            await _grow(db, NEW, 3)
            reader = AuditLog(db, NEW, ORIGIN, checkpoint_delay=3600)
            try:
                async with _client(_app(reader, "officer")) as client:
                    response = await client.get("/v1/audit/export?format=bundle&start=2")
            finally:
                await reader.close()
            assert response.status_code == 200, response.text
            return response.content
        finally:
            await db.dispose()

    bundle = asyncio.run(scenario())
    _, checkpoints, _ = read_bundle(bundle)
    assert len(checkpoints) == 2  # the hand-over checkpoint, then the newest
    code, output = _verify(bundle, tmp_path)
    assert code == 0, output
    assert "1 key hand-over(s) followed" in output
    assert NEW.verifier().key_string() in output
    assert ORIGIN in output


def test_a_bundle_that_would_inflate_out_of_proportion_is_refused_unread() -> None:
    """A zip whose entries inflate 1000 to 1 (a compression bomb) is refused from its
    directory alone, before anything is inflated; an ordinary bundle's ratio passes."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("checkpoints.jsonl", "")
        with bomb.open("entries.jsonl", "w") as member:
            for _ in range(32):
                member.write(b"\0" * (1 << 20))
    with pytest.raises(VerificationError, match="would inflate") as refused:
        read_bundle(sink.getvalue())
    assert refused.value.code == "bad-export"
    ordinary = io.BytesIO()
    with zipfile.ZipFile(ordinary, "w", zipfile.ZIP_DEFLATED) as bundle:
        lines = [
            json.dumps({"index": i, "entry": {"event": "access-decision",
                                              "request_id": hashlib.sha256(b"%d" % i).hexdigest()}})
            for i in range(30_000)
        ]  # fmt: skip
        bundle.writestr("entries.jsonl", "\n".join(lines))
        bundle.writestr("checkpoints.jsonl", "")
    entries, _, _ = read_bundle(ordinary.getvalue())
    assert len(entries) == 30_000


class _TokyoHostClock(datetime):
    """The clock of a host whose local zone is Asia/Tokyo (UTC+9), at ``_MOMENT``."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        if tz is None:  # local wall time, naive
            return _MOMENT.astimezone(ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)
        return _MOMENT.astimezone(tz)


_MOMENT = datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)


def test_a_bundles_member_times_are_utc_whatever_the_hosts_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zip members of an exported bundle carry the export's time in UTC, not the
    host's local wall time."""
    monkeypatch.setattr(export_api, "datetime", _TokyoHostClock)

    async def export() -> bytes:
        async with opened(f"sqlite+aiosqlite:///{tmp_path / 'sluis.db'}") as log:
            for n in range(3):
                await log.append(sample(n))
            await log.checkpoint_now()
            async with _client(_app(log, "officer")) as client:
                response = await client.get("/v1/audit/export?format=bundle")
                assert response.status_code == 200
                return response.content

    with zipfile.ZipFile(io.BytesIO(asyncio.run(export()))) as bundle:
        stamps = {info.date_time for info in bundle.infolist()}
    assert stamps == {(2026, 3, 4, 5, 6, 8)}
