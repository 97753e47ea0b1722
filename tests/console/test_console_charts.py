"""The overview's charts and the agreements page in Chromium, with data in them.

Before the gateway starts, the site gets a dataset whose policy allows five uses, an
agreement revoked (with a hostile reason) and a second one approved with four uses spent,
and access decisions in the last hours, written through the real audit log under the site's
key; some name datasets, consumers and reasons that are HTML, script, bidi overrides. The
browser must draw the charts with those numbers and run none of that text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.agreements import usage
from gateway.agreements.schemas import AgreementRequest
from gateway.agreements.service import AgreementService, key_of
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.log import AuditLog
from gateway.audit.wiring import open_audit_log
from gateway.datasets.factory import create_connector
from gateway.datasets.service import DatasetService
from gateway.settings import load_audit_key
from gateway.storage.db import Database
from tests.console.browser import chromium, missing
from tests.console.test_console import Console, screenshot
from tests.gateway.test_agreement_uses import PURPOSE, _party
from tests.support.audit_site import MAKER, UNIVERSITY, Site, open_site
from tests.support.registry import files_connector, register_dataset
from tests.support.server import running_gateway

if missing() is None:
    from playwright.sync_api import expect

DATASET = "sensor-data"
POLICY = f"""
uid: urn:sluis:policy:five-uses
type: Offer
target: urn:sluis:dataset:{DATASET}
permissions: [{{action: read, constraints: [[count, lteq, 5]]}}]
"""
XSS_DATASET = "<script>window.__xss=1</script>\u202eevil"
XSS_CONSUMER = '<img src=x onerror="window.__xss=1">'
XSS_REASON = "javascript:window.__xss=1"
REVOKED_BECAUSE = '<img src=x onerror="window.__xss=2"> misuse'


def _decision(now: datetime, hours: float, dataset: str, who: str, deny: str | None) -> AuditEntry:
    result = "deny" if deny else "permit"
    return AuditEntry(
        time=now - timedelta(hours=hours),
        event="access-decision",
        actor=Actor(participant=who),
        dataset=dataset,
        decision=DecisionRecord(result=result, reasons=(deny or "permitted",)),
    )


async def _agreements(db: Database, audit: AuditLog, now: datetime) -> None:
    service = AgreementService(db, DatasetService(db, create_connector), audit)
    consumer, provider = _party(UNIVERSITY, "consumer"), _party(MAKER, "provider")
    ask = AgreementRequest(dataset=DATASET, purpose=PURPOSE)
    first = (await service.request(consumer, ask, now=now)).agreement
    await service.revoke(first.id, provider, REVOKED_BECAUSE, now=now)
    second = (await service.request(consumer, ask, now=now)).agreement
    await service.approve(second.id, provider, now=now)
    for _ in range(4):
        async with db.session() as session:
            await usage.spend(session, key_of(second), now, agreement_id=second.id, cap=5)


async def _seed(site: Site) -> None:
    settings, now = site.settings(), datetime.now(UTC)
    db = Database(site.database)
    await register_dataset(db, DATASET, provider=MAKER, policy=POLICY, connector=files_connector())
    audit = await open_audit_log(db, settings, load_audit_key(settings), now=now)
    try:
        await _agreements(db, audit, now)
        entries = [_decision(now, 1, DATASET, UNIVERSITY, None) for _ in range(6)]
        entries += [_decision(now, 3, DATASET, XSS_CONSUMER, None) for _ in range(2)]
        entries += [_decision(now, 2, XSS_DATASET, UNIVERSITY, "no-agreement")] * 3
        entries += [_decision(now, 5, DATASET, XSS_CONSUMER, XSS_REASON)]
        for entry in entries:
            await audit.append(entry)
        for _ in range(100):  # the checkpointer signs about half a second after new entries
            signed = await audit.latest_checkpoint()
            if signed is not None and signed.size == await audit.size():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("no checkpoint covered the seeded entries")
    finally:
        await audit.close()
        await db.dispose()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    directory = tmp_path_factory.mktemp("console-charts")
    with open_site("sqlite", directory) as site:
        asyncio.run(_seed(site))  # before Playwright's loop runs on this thread
        with running_gateway(site.settings()) as base, chromium() as browser:
            yield Console(site, base, browser)


def _hostile_page(console: Console) -> tuple[Any, list[str]]:
    page = console.officer()
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    return page, violations


def test_the_overview_draws_the_charts_with_the_logs_data(console: Console) -> None:
    page, violations = _hostile_page(console)
    page.goto("/console/")
    expect(page.locator("#checkpoint-status")).to_contain_text("Signature verified")
    expect(page.locator("#charts-status")).to_contain_text("Drawn by the gateway since")
    images = page.locator(".charts img")
    expect(images).to_have_count(4)
    for image in images.all():  # each a decoded SVG image of the chart's size
        assert image.evaluate("i => i.complete && i.naturalWidth === 720 && i.naturalHeight > 30")
    expect(page.locator("#activity")).to_contain_text("8 permitted, 1 denied")
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "overview-charts")
    # another period, chosen in the counts form: the charts are drawn again for it
    page.fill("#counts-since", "2020-01-01T00:00:00Z")
    page.fill("#counts-until", "2020-01-02T00:00:00Z")
    page.press("#counts-until", "Enter")
    expect(page.locator("#charts-status")).to_contain_text("until 2020-01-02T00:00:00Z")
    source = page.locator("#chart-requests").get_attribute("src") or ""
    assert "since=2020-01-01" in source
    assert "No access decisions in this period." in page.request.get(source).text()
    assert violations == []
    page.context.close()


@pytest.mark.parametrize(
    ("chart", "shown"),
    [
        ("requests", [f"{DATASET} (9)", f"{XSS_DATASET[:31]}\u27e8U+202E\u27e9evil (3)"]),
        (
            "denials",
            ["access-decision: no-agreement", f"access-decision: {XSS_REASON}"[:39] + "\u2026"],
        ),
        ("consumers", [DATASET, UNIVERSITY, "6", XSS_CONSUMER, "3"]),
        ("limits", [f"{UNIVERSITY} \u2192 {DATASET}", "4/5, 1 left"]),
    ],
)
def test_a_chart_opened_on_its_own_runs_nothing(
    console: Console, chart: str, shown: list[str]
) -> None:
    page, violations = _hostile_page(console)
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = page.goto(f"/console/charts/{chart}.svg?{urlencode({'since': since})}")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    texts = page.evaluate("[...document.querySelectorAll('text')].map(t => t.textContent)")
    for text in shown:
        assert text in texts, (text, texts)
    assert page.evaluate("document.querySelectorAll('script, foreignObject, img').length") == 0
    assert page.evaluate("window.__xss") is None
    assert violations == []
    page.context.close()


def test_agreements_show_uses_left_and_their_own_history(console: Console) -> None:
    page, violations = _hostile_page(console)
    page.goto("/console/parties")
    expect(page.locator("#agreements-status")).to_contain_text("2 agreements")
    rows = page.locator("#agreements tbody tr")
    active = rows.filter(has_text="active")
    expect(active.locator("td").nth(6)).to_have_text("4")
    expect(active.locator("td").nth(7)).to_have_text("1 of 5")
    revoked = rows.filter(has_text="revoked")
    expect(revoked.locator("td").nth(7)).to_have_text("(ended; limit 5)")
    revoked.get_by_role("button", name="history").focus()
    page.keyboard.press("Enter")  # by keyboard
    history = page.locator("tr.history")
    expect(history).to_contain_text("2 state changes")
    items = history.locator("li")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("request \u2192 active")
    expect(items.nth(1)).to_contain_text(f"revoke \u2192 revoked by {MAKER}")
    expect(items.nth(1)).to_contain_text(f"reason: {REVOKED_BECAUSE}")
    assert history.locator("img, script").count() == 0
    assert page.evaluate("window.__xss") is None
    screenshot(page, "parties-history")
    items.nth(1).get_by_role("link").click()  # the entry, verified in the log
    expect(page.locator("#entry-status")).to_contain_text("Verified: this entry is at index")
    expect(page.locator("#entry-json")).to_contain_text('"action": "revoke"')
    assert violations == []
    page.context.close()
