"""``/console/``: the officer's pages and their scripts, officer-only, under a strict CSP.

Every file is read from the package once, at import; a name not in that set is a 404, so
no path from the request ever reaches the file system.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import RedirectResponse

from gateway.errors import NotFound
from gateway.http.deps import ServicesDep, require_role
from gateway.participants.service import AuthenticatedParticipant

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
OfficerCaller = Annotated[AuthenticatedParticipant, Depends(require_role("officer"))]

#: No inline script or style, nothing from another origin, no framing, no plugins.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",  # entry pages and the scripts that verify them
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PAGES = {
    "": "overview.html",
    "entries": "entries.html",
    "entry": "entry.html",
    "parties": "parties.html",
    "export": "export.html",
}


def _load() -> dict[str, tuple[bytes, str]]:
    """Every shipped file by its path under ``static/``, with its media type."""
    files: dict[str, tuple[bytes, str]] = {}
    pending = [(resources.files(__package__).joinpath("static"), "")]
    while pending:
        folder, prefix = pending.pop()
        for item in folder.iterdir():
            if item.is_dir():
                pending.append((item, f"{prefix}{item.name}/"))
            elif (suffix := item.name[item.name.rfind(".") :]) in _MEDIA_TYPES:
                files[prefix + item.name] = (item.read_bytes(), _MEDIA_TYPES[suffix])
    return files


FILES = _load()


#: In entry.html: where the tracing backend's URL template goes (``trace_url``), if set.
TRACE_URL_META = b'<meta name="sluis-trace-url" content="">'


def _serve(name: str, *, trace_url: str | None = None) -> Response:
    found = FILES.get(name)
    if found is None:
        raise NotFound("not-found", "no such console file")
    body, media_type = found
    if trace_url and TRACE_URL_META in body:  # the operator's, checked by Settings; escaped
        filled = f'<meta name="sluis-trace-url" content="{html.escape(trace_url, quote=True)}">'
        body = body.replace(TRACE_URL_META, filled.encode())
    return Response(body, media_type=media_type, headers=HEADERS)


@router.get("")
async def console_root(_: OfficerCaller) -> RedirectResponse:
    """``/console`` to ``/console/`` (relative links need the slash)."""
    return RedirectResponse("/console/", status_code=308, headers=HEADERS)


@router.get("/static/{name:path}")
async def static(_: OfficerCaller, name: str) -> Response:
    """A script or style sheet of the console."""
    return _serve(name)


@router.get("/")
async def overview(_: OfficerCaller) -> Response:
    """The console's overview page."""
    return _serve(PAGES[""])


@router.get("/{page}")
async def page(_: OfficerCaller, page: str, services: ServicesDep) -> Response:
    """One of the console's other pages: entries, entry, parties, export."""
    if page not in PAGES:
        raise NotFound("not-found", "no such console page")
    return _serve(PAGES[page], trace_url=services.settings.trace_url)
