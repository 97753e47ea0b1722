"""The console's sorted and linked entries and its export page, in Chromium, against the
real gateway on loopback with mTLS.

The log holds admin changes (through the gateway) and an agreement's story written by a
second audit writer on the same database (a replica's): the agreement changing, an access
decision and its completion (one request id, one trace), and a denial. The export page's
downloads happen in the browser; the bundle verifies with the ``sluis`` command itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.wiring import open_audit_log
from gateway.settings import load_audit_key
from gateway.storage.db import Database
from tests.console.browser import chromium, missing
from tests.console.test_console import Console, screenshot
from tests.support.audit_site import MAKER, UNIVERSITY, Site, client, make_changes, open_site
from tests.support.server import running_gateway

if missing() is None:
    from playwright.sync_api import expect

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_URL = "https://tracing.example/trace/{trace_id}?from=sluis&x=1"  # escaped into the page
HOSTILE_REQUEST = '<img src=x onerror="window.__xss=1">'
HOSTILE_TARGET = "javascript:window.__xss=1"
SLUIS = Path(sys.executable).with_name("sluis")


def _story(now: datetime) -> list[AuditEntry]:
    agreement = {"dataset": "spindle-sensors", "target": "agreement:agr-1"}
    consumer = Actor(participant=UNIVERSITY)
    permit = DecisionRecord(result="permit", reasons=("permitted",))
    return [
        AuditEntry(
            time=now, event="agreement-changed", actor=Actor(participant=MAKER), action="approve",
            decision=DecisionRecord(result="permit", reasons=("active", "")), **agreement,
        ),
        AuditEntry(
            time=now, event="access-decision", actor=consumer, decision=permit,
            request_id="ex-1", trace_id=TRACE, **agreement,
        ),
        AuditEntry(
            time=now, event="exchange-completed", actor=consumer, dataset="spindle-sensors",
            decision=DecisionRecord(result="permit", reasons=("ok", "seconds=0.010")),
            request_id="ex-1", trace_id=TRACE, rows=10, bytes=420,
        ),
        AuditEntry(
            time=now, event="access-decision", actor=consumer,
            decision=DecisionRecord(result="deny", reasons=("uses-exhausted",)), **agreement,
        ),
        AuditEntry(
            time=now, event="admin-change", actor=Actor(participant=MAKER), action="update",
            request_id=HOSTILE_REQUEST, target=HOSTILE_TARGET,
        ),
    ]  # fmt: skip


async def _write_story(site: Site) -> None:
    """The story, appended by a second writer (as another replica would) and signed."""
    settings = site.settings()
    db = Database(site.database)
    now = datetime.now(UTC)
    audit = await open_audit_log(db, settings, load_audit_key(settings), now=now)
    try:
        for entry in _story(now):
            await audit.append(entry)
        await audit.checkpoint_now()
    finally:
        await audit.close()
        await db.dispose()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    directory = tmp_path_factory.mktemp("console-export")
    with (
        open_site("sqlite", directory) as site,
        running_gateway(site.settings(trace_url=TRACE_URL)) as base,
    ):
        make_changes(site, base, ["Universiteit Oost"])
        asyncio.run(_write_story(site))
        with chromium() as browser:
            yield Console(site, base, browser)


def _indices(page: Any) -> list[int]:
    return [int(text) for text in page.locator("#entries tbody td.index").all_inner_texts()]


def _follow(page: Any) -> None:
    """Click "Next page" and wait until the page it leads to has loaded its entries."""
    href = page.locator("#next-page").get_attribute("href")
    page.click("#next-page")
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator("#entries-status")).to_have_class(re.compile(r"\bok\b"))


def _api(console: Console, **params: Any) -> list[dict[str, Any]]:
    with client(console.site, console.base, "officer") as officer:
        answer = officer.get("/v1/audit/entries", params={"limit": 1000, **params})
        return list(answer.json()["entries"])


def test_filters_by_agreement_trace_and_request(console: Console) -> None:
    page = console.officer()
    page.goto("/console/entries?agreement=agr-1&order=asc")
    rows = page.locator("#entries tbody tr")
    expect(rows).to_have_count(3)
    events = [row.locator("td").nth(2).inner_text() for row in rows.all()]
    assert events == ["agreement-changed", "access-decision", "access-decision"]
    # the trace id through the form, by keyboard
    page.goto("/console/entries")
    page.focus("input[name=trace_id]")
    page.keyboard.type(TRACE)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"trace_id={TRACE}"))
    expect(rows).to_have_count(2)
    page.goto("/console/entries?request_id=ex-1&order=asc")
    expect(rows).to_have_count(2)
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("exchange-completed")
    page.context.close()


def test_sorting_by_a_column_pages_through_every_entry(console: Console) -> None:
    page = console.officer()
    page.goto("/console/entries?limit=3")
    page.get_by_role("link", name="Actor").click()  # sorted by participant, newest first
    expect(page).to_have_url(re.compile(r"sort=participant"))
    actor = page.locator("#entries thead th").nth(3)
    expect(actor).to_have_attribute("aria-sort", "descending")
    page.get_by_role("link", name="Actor ▼").click()  # the same header flips the order
    expect(actor).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#entries tbody tr")).to_have_count(3)
    seen = _indices(page)
    screenshot(page, "entries-sorted")
    for _ in range(20):
        following = page.locator("#next-page")
        if following.is_hidden():
            break
        _follow(page)
        seen += _indices(page)
    wanted = [e["index"] for e in _api(console, sort="participant", order="asc")]
    assert seen == wanted
    assert len(set(seen)) == len(_api(console))  # every entry, once
    # sorted and filtered at once, one entry a page: the cursor keeps both
    page.goto("/console/entries?agreement=agr-1&sort=event&order=asc&limit=1")
    events = []
    for _ in range(5):
        expect(page.locator("#entries-status")).to_have_class(re.compile(r"\bok\b"))
        events += page.locator("#entries tbody td:nth-child(3)").all_inner_texts()
        if page.locator("#next-page").is_hidden():
            break
        _follow(page)
        expect(page).to_have_url(re.compile(r"agreement=agr-1.*cursor="))
    assert events == ["access-decision", "access-decision", "agreement-changed"]
    # a header click drops the cursor: it belongs to one sort
    page.get_by_role("link", name="Time").click()
    expect(page).to_have_url(re.compile(r"sort=time"))
    expect(page).not_to_have_url(re.compile(r"cursor="))
    expect(page.locator("#entries tbody tr")).to_have_count(1)
    page.context.close()


def test_entry_links_decision_completion_agreement_and_trace(console: Console) -> None:
    decision, completion = (e["index"] for e in _api(console, request_id="ex-1"))
    page = console.officer()
    page.goto(f"/console/entry?index={decision}")
    expect(page.locator("#entry-status")).to_contain_text("Verified")
    related = page.locator("#related")
    expect(related).to_contain_text(f"Its completion: entry {completion}")
    screenshot(page, "entry-links")
    related.get_by_role("link", name=f"Its completion: entry {completion}").click()
    expect(page.locator("#entry-json")).to_contain_text('"event": "exchange-completed"')
    expect(related).to_contain_text(f"The access decision: entry {decision}")
    expect(page.locator("#entry-facts")).to_contain_text(TRACE)
    backend = related.get_by_role("link", name="This trace in the tracing backend")
    expect(backend).to_have_attribute("href", TRACE_URL.replace("{trace_id}", TRACE))
    related.get_by_role("link", name="Entries of this trace").click()
    expect(page.locator("#entries tbody tr")).to_have_count(2)
    page.goto(f"/console/entry?index={decision}")
    page.locator("#related").get_by_role("link", name="This agreement's history").click()
    expect(page).to_have_url(re.compile(r"agreement=agr-1"))
    expect(page.locator("#entries tbody tr")).to_have_count(3)
    page.context.close()


def test_hostile_link_fields_stay_text(console: Console) -> None:
    (hostile,) = (e["index"] for e in _api(console, target=HOSTILE_TARGET))
    page = console.officer()
    page.goto(f"/console/entry?index={hostile}")
    expect(page.locator("#entry-status")).to_contain_text("Verified")
    related = page.locator("#related")
    expect(related).to_contain_text(f"All entries of request {HOSTILE_REQUEST}")
    expect(related).to_contain_text("Entries with this target")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#related img, #related script").count() == 0
    for link in page.locator("a").all():
        href = link.get_attribute("href") or ""
        assert href.startswith("/console/"), href  # no scheme an entry could choose
    page.context.close()


def test_export_page_downloads_each_format_and_the_bundle_verifies(
    console: Console, tmp_path: Path
) -> None:
    page = console.officer()
    page.goto("/console/entries?order=asc&limit=4&after=1")
    page.click("#export-page")  # this page's range, entries 2 to 5
    expect(page).to_have_url(re.compile(r"/console/export\?start=2&end=6"))
    expect(page.locator("#export-status")).to_contain_text("Range: entries 2 to 6")
    expect(page.locator("#verify-command")).to_contain_text(console.key)
    screenshot(page, "export")
    files: dict[str, Path] = {}
    for fmt in ("jsonl", "ocsf", "syslog", "bundle"):
        with page.expect_download() as info:
            page.click(f"#download-{fmt}")
        download = info.value
        assert download.failure() is None
        files[fmt] = tmp_path / download.suggested_filename
        download.save_as(files[fmt])
    assert files["jsonl"].name == "sluis-audit-2-6.jsonl"
    lines = files["jsonl"].read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [2, 3, 4, 5]
    ocsf = [json.loads(line) for line in files["ocsf"].read_text().splitlines()]
    assert [r["metadata"]["sequence"] for r in ocsf] == [2, 3, 4, 5]
    assert all(line.startswith("<") for line in files["syslog"].read_text().splitlines())
    assert re.fullmatch(r"sluis-audit-2-\d+\.zip", files["bundle"].name)
    verified = subprocess.run(
        [str(SLUIS), "audit", "verify", str(files["bundle"]), "--key", console.key],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok: ")
    # a range the officer types: the links follow it; a non-number disables them
    page.fill("input[name=start]", "1.5")
    expect(page.locator("#export-status")).to_contain_text("whole numbers")
    assert page.locator("#download-bundle").get_attribute("href") is None
    page.fill("input[name=start]", "0")
    page.fill("input[name=end]", "3")
    expect(page.locator("#download-jsonl")).to_have_attribute(
        "href", "/v1/audit/export?format=jsonl&start=0&end=3"
    )
    page.context.close()
