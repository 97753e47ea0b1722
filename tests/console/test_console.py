"""The officer's console in Chromium, against the real gateway on loopback with mTLS.

One gateway and one browser for the module; each test opens its own browser context (its
own localStorage: pinned key, witness, alarm). The browser presents its client certificate
through Playwright's ``client_certificates``; the test CA is not in Chromium's store, hence
``ignore_https_errors`` (the server's certificate is checked by every other test).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.audit import Checkpoint, Signer, Verifier, sign_checkpoint
from gateway.console.endpoints import CSP
from tests.console.browser import chromium, missing
from tests.support.audit_site import Site, client, make_changes, open_site, public_key
from tests.support.server import running_gateway

if missing() is None:
    from playwright.sync_api import expect
PINNED = "sluis-console:key"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
HOSTILE = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    "javascript:window.__xss=1",
    "\u202eexe.txt evil",  # reads "live txt.exe" unless shown as ⟨U+202E⟩
    "W" * 200,
]


RLO, VISIBLE_RLO = "\u202e", "\u27e8U+202E\u27e9"


class Console:
    """The gateway, its site and the browser: what each test opens contexts on."""

    def __init__(self, site: Site, base: str, browser: Any) -> None:
        self.site, self.base, self.browser = site, base, browser
        with client(site, base, "officer") as officer:
            note = officer.get("/v1/audit/checkpoint").text
        self.origin = note.split("\n", 1)[0]
        self.key = Verifier(self.origin, public_key(site.home / "audit-key.pem")).key_string()

    def context(self, who: str | None = "officer") -> Any:
        certs = []
        if who is not None:
            cert = self.site.certs[who]
            paths = {"certPath": str(cert.cert_path), "keyPath": str(cert.key_path)}
            certs = [{"origin": self.base, **paths}]
        return self.browser.new_context(
            ignore_https_errors=True, client_certificates=certs, base_url=self.base
        )

    def officer(self, *, pin: bool = True) -> Any:
        """A page of a fresh officer context; with ``pin``, the log's key is pinned already
        (test_overview_verifies_the_checkpoint_with_the_pinned_key pins through the form)."""
        context = self.context()
        if pin:
            script = "localStorage.getItem(k) ?? localStorage.setItem(k, v)"
            context.add_init_script(f"((k, v) => {script})({PINNED!r}, {self.key!r})")
        page = context.new_page()
        page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
        return page

    def forged_checkpoint(self, size: int, root: bytes) -> str:
        """A checkpoint the log's own key signed over a root the log does not have."""
        key = serialization.load_pem_private_key(
            (self.site.home / "audit-key.pem").read_bytes(), None
        )
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        signer = Signer(self.origin, seed)
        return sign_checkpoint(Checkpoint(self.origin, size, root), signer).decode()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    # Playwright's sync API runs an event loop on this thread: the site (asyncio.run) first.
    directory = tmp_path_factory.mktemp("console")
    with open_site("sqlite", directory) as site, running_gateway(site.settings()) as base:
        make_changes(site, base, [*HOSTILE, "Universiteit Oost"])
        with chromium() as browser:
            yield Console(site, base, browser)


def screenshot(page: Any, name: str) -> None:
    """Into docs/console/ when SLUIS_CONSOLE_SCREENSHOTS is set (the officer guide's)."""
    if os.environ.get("SLUIS_CONSOLE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(
    ("who", "status", "problem"),
    [(None, 401, "certificate-no-certificate"), ("maker", 403, "role-required")],
)
def test_console_refuses_without_an_officer_certificate(
    console: Console, who: str | None, status: int, problem: str
) -> None:
    context = console.context(who)
    page = context.new_page()
    for path in ("/console/", "/console/static/console.js", "/console/entries"):
        response = page.goto(path)
        assert response is not None
        assert response.status == status
        assert response.json()["type"] == f"urn:sluis:problem:{problem}"
    context.close()


def test_overview_verifies_the_checkpoint_with_the_pinned_key(console: Console) -> None:
    page = console.officer(pin=False)
    response = page.goto("/console/")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    expect(page.locator("#key-status")).to_contain_text("No key pinned")
    expect(page.locator("#checkpoint-status")).to_contain_text("no key pinned")
    page.fill("#key-input", "not a key")
    page.click("#pin-key")
    expect(page.locator("#key-status")).to_contain_text("Key NOT pinned: bad-key")
    page.fill("#key-input", console.key)
    page.click("#pin-key")
    expect(page.locator("#checkpoint-status")).to_contain_text("first checkpoint")
    expect(page.locator("#key-status")).to_contain_text(f"Pinned key: {console.origin}+")
    expect(page.locator("#counts")).to_contain_text("Admin changes")
    expect(page.locator("#activity-status")).to_contain_text("No access decisions")
    page.reload()
    expect(page.locator("#checkpoint-status")).to_contain_text("the same checkpoint")
    expect(page.locator("#alarm")).to_be_hidden()
    expect(page.locator("#activity-status")).to_contain_text("No access decisions")
    expect(page.locator("#counts-status")).to_contain_text("entries since")
    screenshot(page, "overview")
    page.context.close()


def test_a_wrong_pinned_key_is_named(console: Console) -> None:
    page = console.officer(pin=False)
    page.goto("/console/")
    impostor = Signer(console.origin, bytes(32)).verifier().key_string()  # same name
    page.fill("#key-input", impostor)
    page.click("#pin-key")
    expect(page.locator("#checkpoint-status")).to_contain_text(
        "Checkpoint NOT verified: unverified"
    )
    page.goto("/console/entry?index=0")
    expect(page.locator("#entry-status")).to_contain_text("NOT verified: unverified")
    page.context.close()


def test_entries_filter_and_page_by_keyboard(console: Console) -> None:
    page = console.officer()
    page.goto("/console/entries?limit=2&order=asc")
    rows = page.locator("#entries tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").first).to_have_text("0")
    page.click("#next-page")
    expect(rows.nth(0).locator("td").first).to_have_text("2")
    # newest first by default, paged on to older entries
    page.goto("/console/entries?limit=2")
    newest = int(rows.nth(0).locator("td").first.inner_text())
    assert newest >= len(HOSTILE) + 1
    expect(rows.nth(1).locator("td").first).to_have_text(str(newest - 1))
    page.click("#next-page")
    expect(rows.nth(0).locator("td").first).to_have_text(str(newest - 2))
    # the filter form by keyboard: choose the event, submit with Enter
    page.goto("/console/entries")
    page.focus("select[name=event]")
    page.select_option("select[name=event]", "admin-change")
    page.keyboard.press("Tab")  # to the participant field
    page.keyboard.type("EU.EORI.NL000000001")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"event=admin-change"))
    expect(rows).to_have_count(len(HOSTILE) + 1)
    expect(rows.nth(0).locator("td").first).to_have_text(str(len(HOSTILE) + 1))  # newest
    for cells in rows.all():
        expect(cells.locator("td").nth(2)).to_have_text("admin-change")
    screenshot(page, "entries")
    # Tab from the page's top reaches the first entry's link; Enter opens its detail
    page.locator("#entries tbody a").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#entry-status")).to_contain_text("Verified")
    page.context.close()


def test_entry_detail_verifies_inclusion_in_the_browser(console: Console) -> None:
    page = console.officer()
    page.goto("/console/entry?index=1")
    expect(page.locator("#entry-status")).to_contain_text("Verified: this entry is at index 1")
    expect(page.locator("#entry-json")).to_contain_text('"event": "admin-change"')
    expect(page.locator("#related")).to_contain_text("Entries of this participant")
    screenshot(page, "entry")
    page.context.close()


def test_a_tampered_entry_fails_inclusion(console: Console) -> None:
    page = console.officer()
    database = Path(console.site.database.split("///", 1)[1])
    with sqlite3.connect(database) as db:
        (original,) = db.execute("SELECT entry FROM audit_entries WHERE idx = 2").fetchone()
        forged = original.replace(b'"action":"update"', b'"action":"delete"')
        assert forged != original
        db.execute("UPDATE audit_entries SET entry = ? WHERE idx = 2", (forged,))
    try:
        page.goto("/console/entry?index=2")
        expect(page.locator("#entry-status")).to_contain_text(
            "Inclusion NOT verified: this entry is not the one the signed log holds at 2"
        )
        expect(page.locator("#entry-status")).to_contain_text("root-mismatch")
        screenshot(page, "entry-tampered")
    finally:
        with sqlite3.connect(database) as db:
            db.execute("UPDATE audit_entries SET entry = ? WHERE idx = 2", (original,))
    page.context.close()


def test_a_forked_checkpoint_raises_a_banner_that_stays(console: Console) -> None:
    page = console.officer()
    page.goto("/console/")
    expect(page.locator("#checkpoint-status")).to_contain_text("first checkpoint")
    seen = json.loads(page.evaluate("localStorage.getItem('sluis-console:witness')"))
    # this browser "saw" a checkpoint signed by the log's key over a different history
    fork = console.forged_checkpoint(int(seen["size"]) - 1, bytes(range(32)))
    witness = {
        "size": str(int(seen["size"]) - 1),
        "root": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "note": fork,
    }
    page.evaluate("w => localStorage.setItem('sluis-console:witness', w)", json.dumps(witness))
    page.reload()
    banner = page.locator("#alarm")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("not consistent (root-mismatch)")
    expect(page.locator("#checkpoint-status")).to_contain_text("Checkpoint NOT verified")
    assert banner.locator("button, a").count() == 0  # nothing to dismiss it with
    screenshot(page, "overview-fork")
    for path in ("/console/entries", "/console/entry?index=0", "/console/"):
        page.goto(path)
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("failed a consistency check")
    page.context.close()


def test_hostile_entries_are_shown_as_text(console: Console) -> None:
    page = console.officer()
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.goto("/console/entries?event=admin-change")
    table = page.locator("#entries")
    for text in HOSTILE:
        expect(table).to_contain_text(f"name={text.replace(RLO, VISIBLE_RLO)}")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#entries img, #entries script").count() == 0
    assert not [
        a for a in page.locator("a").all() if "javascript:" in (a.get_attribute("href") or "")
    ]
    # the layout holds: nothing wider than the window
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto("/console/entry?index=1")
    expect(page.locator("#entry-status")).to_contain_text("Verified")
    assert page.evaluate("window.__xss") is None
    assert violations == []  # nothing even tried to run inline
    page.context.close()


def test_agreements_and_participants(console: Console) -> None:
    gone = console.site.pki.client("Gone BV", "NTRNL-99999999")
    console.site.pki.revoke(gone)
    page = console.officer()
    page.goto("/console/parties")
    expect(page.locator("#participants-status")).to_contain_text("3 participants")
    expect(page.locator("#participants")).to_contain_text("Security Office")
    expect(page.locator("#revoked")).to_contain_text(format(gone.cert.serial_number, "x"))
    expect(page.locator("#agreements-status")).to_contain_text("0 agreements")
    page.locator("#participants").get_by_role("link", name="entries", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/console/entries\?participant="))
    page.go_back()
    expect(page.locator("#revoked-status")).to_contain_text("revoked")
    screenshot(page, "parties")
    page.context.close()


def test_a_rolled_back_log_raises_the_banner(console: Console) -> None:
    page = console.officer()
    page.goto("/console/")
    expect(page.locator("#checkpoint-status")).to_contain_text("first checkpoint")
    seen = json.loads(page.evaluate("localStorage.getItem('sluis-console:witness')"))
    # this browser saw a larger tree, signed by the log's key, than the log now proves
    larger = int(seen["size"]) + 5
    witness = {
        "size": str(larger),
        "root": seen["root"],
        "note": console.forged_checkpoint(larger, bytes(32)),
    }
    page.evaluate("w => localStorage.setItem('sluis-console:witness', w)", json.dumps(witness))
    page.reload()
    expect(page.locator("#alarm")).to_contain_text(f"cannot prove it holds the {larger}")
    page.context.close()
