"""``/console/`` over HTTP, without a browser: officer only, strict headers, no file access.

The browser tests (test_console.py) cover the same with a real certificate; these run
everywhere, also where Chromium is absent, and defend the console-officer-only mutant.
"""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from gateway.console import endpoints
from gateway.console.endpoints import CSP
from gateway.http import problems
from gateway.http.deps import authenticated, get_services
from gateway.participants.service import AuthenticatedParticipant
from tests.audit.test_endpoints import _caller

PATHS = ["/console/", "/console/entries", "/console/entry", "/console/static/verify/merkle.js"]


def _get(path: str, *roles: str) -> httpx.Response:
    app = FastAPI()
    problems.install(app)
    app.include_router(endpoints.router)

    async def fake() -> AuthenticatedParticipant:
        return _caller(*roles)

    app.dependency_overrides[authenticated] = fake

    async def services() -> SimpleNamespace:  # the pages read one setting: trace_url
        return SimpleNamespace(settings=SimpleNamespace(trace_url=None))

    app.dependency_overrides[get_services] = services

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
            return await client.get(path)

    return asyncio.run(run())


@pytest.mark.parametrize("path", PATHS)
def test_officers_get_the_console_with_strict_headers(path: str) -> None:
    response = _get(path, "officer")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    kind = "text/javascript" if path.endswith(".js") else "text/html"
    assert response.headers["content-type"].startswith(kind)


def test_the_policy_allows_no_inline_script_and_no_other_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP
    for page in endpoints.PAGES.values():
        html = endpoints.FILES[page][0].decode()
        assert "<script>" not in html  # every script is a file: src="/console/static/..."
        assert re.search(r"<[^>]*\son\w+\s*=", html) is None  # no inline event handlers


@pytest.mark.parametrize("roles", [("consumer",), ("provider", "operator"), ()])
@pytest.mark.parametrize("path", PATHS)
def test_others_are_refused(path: str, roles: tuple[str, ...]) -> None:
    response = _get(path, *roles)
    assert response.status_code == 403
    assert response.json()["type"] == "urn:sluis:problem:role-required"


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/../endpoints.py",
        "/console/static/%2e%2e/endpoints.py",
        "/console/static/..%2f__init__.py",
        "/console/static/nothing.js",
        "/console/nothing",
        "/console/static/",
    ],
)
def test_no_path_reaches_the_file_system(path: str) -> None:
    response = _get(path, "officer")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
