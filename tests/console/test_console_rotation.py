"""Following a key rotation in Chromium: the pin moves only along a hand-over the pinned key
signed, and a forged hand-over is a red banner.

Each test has its own site. The officer pins the log's first key from a file, the log is
handed over with ``rotate_key`` (what ``sluis audit rotate-key`` runs) while the gateway is
stopped, and the gateway comes back signing with the new key only: the browser verifies the
hand-over itself (signed by the old key, the rotation entry included, consistent with what it
saw, cosigned by the new key) and moves the pin. A server that claims a hand-over to a key
of its own (the old key never signed it) is answered with the banner, and the pin stays.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.audit import Checkpoint, Signer, sign_checkpoint
from gateway.audit.jcs import canonical
from gateway.audit.rotation import rotate_key
from gateway.audit.wiring import log_identity, signer_from_key
from gateway.settings import load_audit_key
from gateway.storage.db import Database
from tests.console.browser import chromium, missing
from tests.console.test_console import PINNED, Console, screenshot
from tests.support.audit_site import Site, make_changes, open_site
from tests.support.pki import write_key
from tests.support.server import running_gateway

if missing() is None:
    from playwright.sync_api import expect

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _off_the_loop(call: Callable[[], T]) -> T:
    """Playwright's sync API runs an event loop on this thread: asyncio.run goes elsewhere."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


@pytest.fixture
def site(tmp_path: Path, browser: Any) -> Iterator[Site]:  # noqa: ARG001 - skip first
    opened = open_site("sqlite", tmp_path)
    yield _off_the_loop(opened.__enter__)
    _off_the_loop(lambda: opened.__exit__(None, None, None))


async def _rotate(site: Site, new_key: Path) -> str:
    """Hand the log over to ``new_key``, as ``sluis audit rotate-key`` does."""
    settings, now = site.settings(), datetime.now(UTC)
    db = Database(site.database)
    try:
        old = load_audit_key(settings)
        identity = await log_identity(db, settings, old, now=now)
        new = load_audit_key(site.settings(audit_key_file=new_key))
        signers = signer_from_key(old, identity.origin), signer_from_key(new, identity.origin)
        done = await rotate_key(db, identity, *signers, now=now)
        return done.new_key.key_string()
    finally:
        await db.dispose()


def _context(console: Console, state: dict[str, Any] | None = None) -> Any:
    cert = console.site.certs["officer"]
    paths = {"certPath": str(cert.cert_path), "keyPath": str(cert.key_path)}
    return console.browser.new_context(
        ignore_https_errors=True,
        client_certificates=[{"origin": console.base, **paths}],
        base_url=console.base,
        storage_state=state,
    )


def _moved(state: dict[str, Any], base: str) -> dict[str, Any]:
    """The browser's storage, as it would be at the restarted gateway's (new port) origin."""
    return {**state, "origins": [{**o, "origin": base} for o in state["origins"]]}


def test_the_pin_follows_a_signed_hand_over(site: Site, browser: Any) -> None:
    with running_gateway(site.settings()) as base:
        make_changes(site, base, ["Oost 1"])
        console = Console(site, base, browser)
        context = _context(console)
        page = context.new_page()
        page.goto("/console/")
        key_file = {"name": "audit.pub", "mimeType": "text/plain"}
        page.set_input_files("#key-file", {**key_file, "buffer": b"sluis+00000000+AAAA\n"})
        page.click("#pin-key")
        expect(page.locator("#key-status")).to_contain_text("Key NOT pinned: key-id-mismatch")
        page.set_input_files("#key-file", {**key_file, "buffer": f"{console.key}\n".encode()})
        page.click("#pin-key")  # pinned from the file
        expect(page.locator("#checkpoint-status")).to_contain_text("first checkpoint")
        expect(page.locator("#key-status")).to_contain_text(f"Pinned key: {console.key[:-45]}")
        state = context.storage_state()
        context.close()

    new_path = write_key(site.home / "new-audit-key.pem", ed25519.Ed25519PrivateKey.generate())
    new_key = _off_the_loop(lambda: asyncio.run(_rotate(site, new_path)))
    with running_gateway(site.settings(audit_key_file=new_path)) as base:
        make_changes(site, base, ["Oost 2"])  # signed by the new key only
        console = Console(site, base, browser)
        context = _context(console, _moved(state, base))
        page = context.new_page()
        page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
        page.goto("/console/")
        status = page.locator("#checkpoint-status")
        expect(status).to_contain_text("Signature verified with the pinned key")
        expect(status).to_contain_text("consistency proof verified")
        expect(page.locator("#hand-overs")).to_contain_text("Key handed over at entry")
        expect(page.locator("#hand-overs")).to_contain_text(new_key)
        expect(page.locator("#key-status")).to_contain_text(f"Pinned key: {new_key[:-45]}")
        expect(page.locator("#alarm")).to_be_hidden()
        assert page.evaluate(f"localStorage.getItem({PINNED!r})") == new_key
        screenshot(page, "overview-hand-over")
        page.reload()
        expect(status).to_contain_text("the same checkpoint")
        rotation = page.locator("#hand-overs a").first
        rotation.click()  # the rotation entry itself, verified under the new key
        expect(page.locator("#entry-status")).to_contain_text("Verified: this entry is at index")
        expect(page.locator("#entry-json")).to_contain_text('"event": "key-rotation"')
        context.close()


def test_a_forged_hand_over_is_a_red_banner(site: Site, browser: Any) -> None:
    with running_gateway(site.settings()) as base:
        make_changes(site, base, ["Oost 1"])
        console = Console(site, base, browser)
        page = console.officer()
        page.goto("/console/")
        expect(page.locator("#checkpoint-status")).to_contain_text("first checkpoint")
        seen = int(
            json.loads(page.evaluate("localStorage.getItem('sluis-console:witness')"))["size"]
        )

        # The server now claims the log was handed over to a key of its own.
        impostor = Signer(console.origin, os.urandom(32))
        claimed = {
            "version": 1,
            "event": "key-rotation",
            "target": impostor.verifier().key_string(),
        }
        claimed["time"] = "2026-12-03T00:00:00.000000Z"
        note = sign_checkpoint(Checkpoint(console.origin, seen + 1, os.urandom(32)), impostor)
        answers = {
            "/v1/audit/checkpoint": note,
            f"/v1/audit/checkpoint?at_least={seen + 1}": note,
            f"/v1/audit/entries/{seen}": canonical(claimed),
            "/v1/audit/entries?event=key-rotation&limit=1000": json.dumps(
                {"entries": [{"index": seen, "entry": claimed}], "next_after": None}
            ).encode(),
        }

        def forge(route: Any) -> None:
            path = route.request.url.removeprefix(base)
            if path in answers:
                route.fulfill(status=200, body=answers[path], content_type="text/plain")
            else:
                route.continue_()

        page.context.route(f"{base}/v1/audit/**", forge)
        page.reload()
        banner = page.locator("#alarm")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("a forged key hand-over")
        expect(banner).to_contain_text("not signed by the trusted key")
        expect(page.locator("#checkpoint-status")).to_contain_text(
            "Checkpoint NOT verified: forged-hand-over"
        )
        assert page.evaluate(f"localStorage.getItem({PINNED!r})") == console.key  # not moved
        assert banner.locator("button, a").count() == 0
        expect(page.locator("#charts-status")).to_contain_text("Drawn")
        screenshot(page, "overview-forged-hand-over")
        page.context.unroute(f"{base}/v1/audit/**")
        page.goto("/console/entries")  # on every page, even with the server honest again
        expect(banner).to_contain_text("failed a consistency check")
        page.context.close()
