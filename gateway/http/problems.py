"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every ``type`` is ``urn:sluis:problem:<code>``, stable across releases and listed in
docs/errors.md. The ``detail`` is short and safe to show to the caller; full explanations
go to the log (and, from issue 5 on, the audit log).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from certs import CertificateRejected
from connectors import (
    AggregateNotAllowed,
    AggregateRequired,
    ColumnNotAllowed,
    ConnectorConfigError,
    ConnectorError,
    PathRefused,
    QueryError,
    SourceError,
    SourceTimeout,
    TargetRefused,
)
from gateway.audit.entry import EventType
from gateway.auth.tokens import TokenRejected
from gateway.dsp.errors import dsp_error_fields
from gateway.errors import GatewayError, Unauthorized
from gateway.http import audit_events
from gateway.ratelimit.service import RateLimited
from gateway.storage import StorageUnavailable

log = logging.getLogger("sluis.http")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:sluis:problem:"

_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("not-authenticated", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


#: RFC 6750 §3.1: the only ``error`` values a challenge may carry.
BEARER_ERRORS = frozenset({"invalid_request", "invalid_token", "insufficient_scope"})


def bearer_challenge(error: str | None) -> str:
    """A ``WWW-Authenticate`` value made of fixed strings only (never caller text).

    The explanation goes in the problem body (JSON-escaped), never in the header: a
    header cannot carry non-Latin-1 text, and CR/LF or NUL in one drops the connection.
    """
    if error is None:
        return 'Bearer realm="sluis"'
    code = error if error in BEARER_ERRORS else "invalid_token"
    return f'Bearer realm="sluis", error="{code}"'


class ProblemResponse(JSONResponse):
    """problem+json that always renders: a lone surrogate in caller text is ``\\u``-escaped."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:  # only lone surrogates get here; ASCII JSON carries them
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    dsp_pids: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response.

    On a DSP path (``instance``) the body is also the DSP error object of that protocol
    (:mod:`gateway.dsp.errors`), with the process ids in ``dsp_pids`` where it has them.
    """
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
        body.update(dsp_error_fields(instance, code, detail, dict(dsp_pids or {})))
    body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def rate_limited(retry_after: int, *, instance: str) -> JSONResponse:
    """429 ``rate-limited`` with ``Retry-After`` (a number of seconds; never caller text)."""
    return problem(
        429,
        "rate-limited",
        "Too many requests",
        f"too many requests from this client or address; retry after {retry_after} s",
        instance=instance,
        headers={"Retry-After": str(int(retry_after)), "Cache-Control": "no-store"},
    )


AUDITED_REFUSALS: dict[str, EventType] = {
    "unknown-participant": "certificate-refused",
    "participant-suspended": "certificate-refused",
    "role-required": "access-decision",
    "dataset-not-found": "access-decision",  # a probe for a dataset is a refusal too
}


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)  # noqa: S101 - registered for this class only
    event = AUDITED_REFUSALS.get(exc.code)
    if event is not None:
        refusal = audit_events.entry(
            request, event, result="deny", reasons=(exc.code, exc.detail), target=request.url.path
        )
        await audit_events.record_refusal(request, refusal)
    headers = (
        {"WWW-Authenticate": 'Bearer realm="sluis"'} if isinstance(exc, Unauthorized) else None
    )
    return problem(
        exc.status, exc.code, exc.title, exc.detail, instance=request.url.path, headers=headers,
        dsp_pids=getattr(exc, "dsp_pids", None),
    )  # fmt: skip


async def _certificate_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CertificateRejected)  # noqa: S101 - registered for this class only
    log.info("client certificate refused: %s", exc)
    refusal = audit_events.entry(
        request,
        "certificate-refused",
        result="deny",
        reasons=(f"certificate-{exc.code}", exc.detail),
        target=request.url.path,
    )
    await audit_events.record_refusal(request, refusal)
    return problem(
        401,
        f"certificate-{exc.code}",
        "Client certificate refused",
        exc.detail,
        instance=request.url.path,
    )


def _token_status(exc: TokenRejected) -> int:
    if exc.code == "missing":
        return 401
    return {"invalid_request": 400, "insufficient_scope": 403}.get(exc.error, 401)


async def _token_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TokenRejected)  # noqa: S101 - registered for this class only
    log.info("access token refused: %s", exc.code)
    refusal = audit_events.entry(
        request,
        "token-refused",
        result="deny",
        reasons=(f"token-{exc.code}", exc.detail),
        token_sha256=audit_events.bearer_digest(request),
        target=request.url.path,
    )
    await audit_events.record_refusal(request, refusal)
    status = _token_status(exc)
    challenge = bearer_challenge(None if exc.code == "missing" else exc.error)
    return problem(
        status,
        f"token-{exc.code}",
        "Access token refused",
        exc.detail,
        instance=request.url.path,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
        error=exc.error,
        error_description=exc.detail,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class only
    errors = [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    return problem(
        422,
        "validation-error",
        "Request failed validation",
        "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)[:500],
        instance=request.url.path,
        errors=errors,
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this class only
    code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # noqa: PLR2004 - Allow: every method of the path, not one route's
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(
        exc.status_code,
        code,
        title,
        str(exc.detail),
        instance=request.url.path,
        headers=headers or None,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette names only the first route's)."""
    path = request.url.path
    methods: set[str] = set()
    for template, route_methods in _route_paths(request.app.router.routes):
        regex, _, _ = compile_path(template)
        if regex.match(path):
            methods |= route_methods
    return sorted(methods)


def _route_paths(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path template, methods) of every route; newer FastAPI nests included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _route_paths(included.routes, prefix + route.include_context.prefix)
        elif isinstance(getattr(route, "path", None), str):
            yield prefix + route.path, set(getattr(route, "methods", None) or ())


CONNECTOR_STATUS: tuple[tuple[type[ConnectorError], int, str], ...] = (
    (QueryError, 400, "Invalid query"),
    (PathRefused, 400, "Invalid query"),
    (ColumnNotAllowed, 403, "Not allowed by the usage policy"),
    (AggregateRequired, 403, "Not allowed by the usage policy"),
    (AggregateNotAllowed, 403, "Not allowed by the usage policy"),
    (TargetRefused, 403, "Not allowed"),
    (SourceTimeout, 504, "The data source timed out"),
    (SourceError, 502, "The data source failed"),
    (ConnectorConfigError, 500, "The dataset is misconfigured"),
)


async def _connector_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConnectorError)  # noqa: S101 - registered for this class only
    status, title = next(
        ((s, t) for kind, s, t in CONNECTOR_STATUS if isinstance(exc, kind)), (502, "Data error")
    )
    if status >= 500:  # noqa: PLR2004 - server-side failures are logged in full
        log.error("connector failure on %s: %r", request.url.path, exc, exc_info=exc)
    elif exc.public_reason != exc.reason:  # the operator's side of a refusal: logged, not sent
        log.warning("connector refusal on %s: %s", request.url.path, exc)
    code = exc.code.replace("_", "-")
    detail = exc.public_reason  # never a server-side path, host or driver text
    return problem(status, code, title, detail, instance=request.url.path, **_named(exc))


def _named(exc: ConnectorError) -> dict[str, Any]:
    """The ``column`` (and ``rule``) an error names, as problem extensions."""
    named = {key: getattr(exc, key, None) for key in ("column", "rule")}
    return {k: v for k, v in named.items() if isinstance(v, str)}


async def _storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        503,
        "storage-unavailable",
        "Service unavailable",
        "the database is unavailable; nothing was served",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)  # noqa: S101 - registered for this class only
    return rate_limited(exc.retry_after, instance=request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "internal-error",
        "Internal error",
        "The gateway failed; see its log.",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(CertificateRejected, _certificate_rejected)
    app.add_exception_handler(TokenRejected, _token_rejected)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(StorageUnavailable, _storage_unavailable)
    app.add_exception_handler(ConnectorError, _connector_error)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(Exception, _unexpected)
