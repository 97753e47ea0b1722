"""Debian's Chromium driven by Playwright, or a visible skip where either is absent.

Browsers cannot be downloaded here, so Playwright launches ``/usr/bin/chromium`` (Debian's
``chromium``, installed by ``.ci/run``). Console files can be served to a page without the
gateway by :func:`serve_static`, on an ``https`` origin (WebCrypto needs a secure context).
"""

from __future__ import annotations

import importlib.util
import mimetypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Route

CHROMIUM = Path(os.environ.get("SLUIS_CHROMIUM", "/usr/bin/chromium"))
STATIC = Path(__file__).resolve().parents[2] / "gateway" / "console" / "static"
STATIC_ORIGIN = "https://console.test"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium for a module's tests."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional: skip above

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


def serve_static(context: BrowserContext) -> None:
    """Answer ``https://console.test/<path>`` from the console's static files."""

    def handle(route: Route) -> None:
        path = route.request.url.removeprefix(STATIC_ORIGIN + "/").split("?")[0] or "blank.html"
        file = (STATIC / path).resolve()
        if path == "blank.html":
            route.fulfill(body="<!doctype html><title>verifier</title>", content_type="text/html")
        elif file.is_relative_to(STATIC) and file.is_file():
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            route.fulfill(body=file.read_bytes(), content_type=kind)
        else:
            route.fulfill(status=404)

    context.route(f"{STATIC_ORIGIN}/**", handle)
