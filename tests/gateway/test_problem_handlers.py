"""Every error the gateway answers, through the real problem+json handlers of a FastAPI app.

A small app with :func:`gateway.http.problems.install` and one route per error, called over
httpx's ASGI transport; the audit log of refusals is a recording stand-in with the
``append`` and ``span`` the handlers call (the real log, over HTTP: tests/audit).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

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
from connectors.errors import ValueRefused
from gateway.auth.tokens import TokenRejected
from gateway.errors import BadRequest, NotFound, Unauthorized
from gateway.http import problems
from gateway.http.problems import ProblemResponse, bearer_challenge
from gateway.ratelimit.service import RateLimited
from gateway.storage import StorageUnavailable


class RecordedAudit:
    """The audit log's ``append``, keeping the entries."""

    def __init__(self) -> None:
        self.entries: list[Any] = []

    async def append(self, item: Any) -> None:
        self.entries.append(item)


class Telemetry:
    @contextmanager
    def span(self, _name: str, **_attributes: Any) -> Iterator[None]:
        yield


class Services:
    def __init__(self) -> None:
        self.audit = RecordedAudit()
        self.telemetry = Telemetry()
        self.limits = None


class Body(BaseModel):
    name: str = Field(max_length=3)
    count: int


def _app(error: Exception | None = None) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.state.services = Services()

    @app.get("/raise")
    async def raising() -> None:
        assert error is not None
        raise error

    @app.post("/body")
    async def body(item: Body) -> dict[str, str]:
        return {"name": item.name}

    @app.get("/dsp/negotiations/{pid}")
    async def dsp_raising() -> None:
        assert error is not None
        raise error

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        await websocket.close()

    @app.post("/bodies")
    async def bodies(items: list[Body]) -> int:
        return len(items)

    @app.get("/things")
    async def things() -> None:
        return None

    @app.delete("/things")
    async def delete_things() -> None:
        return None

    return app


def _call(app: FastAPI, method: str = "GET", path: str = "/raise", **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sluis") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(call())


def _answer(error: Exception) -> tuple[httpx.Response, dict[str, Any], list[Any]]:
    app = _app(error)
    response = _call(app)
    assert response.headers["content-type"] == "application/problem+json"
    return response, response.json(), app.state.services.audit.entries


def test_a_gateway_error_is_its_problem() -> None:
    response, body, audited = _answer(BadRequest("query-invalid", "no such column"))
    assert response.status_code == 400
    assert body == {
        "type": "urn:sluis:problem:query-invalid",
        "title": "Bad request",
        "status": 400,
        "detail": "no such column",
        "instance": "/raise",
    }
    assert "www-authenticate" not in response.headers
    assert audited == []


def test_unauthorized_carries_the_bearer_challenge() -> None:
    response, body, _ = _answer(Unauthorized("not-authenticated", "log in"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis"'
    assert body["title"] == "Not authenticated"


@pytest.mark.parametrize(
    ("code", "event"),
    [
        ("unknown-participant", "certificate-refused"),
        ("participant-suspended", "certificate-refused"),
        ("role-required", "access-decision"),
        ("dataset-not-found", "access-decision"),
    ],
)
def test_the_audited_refusals_are_recorded(code: str, event: str) -> None:
    _, body, audited = _answer(NotFound(code, "the words"))
    assert body["type"] == f"urn:sluis:problem:{code}"
    (entry,) = audited
    assert entry.event == event
    assert entry.decision.result == "deny"
    assert list(entry.decision.reasons) == [code, "the words"]
    assert entry.target == "/raise"


def test_a_certificate_refusal_is_401_and_recorded() -> None:
    response, body, audited = _answer(CertificateRejected("revoked", "it was revoked"))
    assert response.status_code == 401
    assert body == {
        "type": "urn:sluis:problem:certificate-revoked",
        "title": "Client certificate refused",
        "status": 401,
        "detail": "it was revoked",
        "instance": "/raise",
    }
    (entry,) = audited
    assert entry.event == "certificate-refused"
    assert entry.decision.result == "deny"
    assert list(entry.decision.reasons) == ["certificate-revoked", "it was revoked"]
    assert entry.target == "/raise"


@pytest.mark.parametrize(
    ("error", "status", "challenge"),
    [
        (TokenRejected("missing", "no token"), 401, 'Bearer realm="sluis"'),
        (TokenRejected("expired", "too old"), 401, 'Bearer realm="sluis", error="invalid_token"'),
        (
            TokenRejected("malformed", "bad", error="invalid_request"),
            400,
            'Bearer realm="sluis", error="invalid_request"',
        ),
        (
            TokenRejected("insufficient-scope", "more", error="insufficient_scope"),
            403,
            'Bearer realm="sluis", error="insufficient_scope"',
        ),
    ],
)
def test_a_token_refusal_has_its_status_and_challenge(
    error: TokenRejected, status: int, challenge: str
) -> None:
    response, body, audited = _answer(error)
    assert response.status_code == status
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["cache-control"] == "no-store"
    assert body == {
        "type": f"urn:sluis:problem:token-{error.code}",
        "title": "Access token refused",
        "status": status,
        "detail": error.detail,
        "instance": "/raise",
        "error": error.error,
        "error_description": error.detail,
    }
    (entry,) = audited
    assert entry.event == "token-refused"
    assert entry.decision.result == "deny"
    assert list(entry.decision.reasons) == [f"token-{error.code}", error.detail]
    assert entry.target == "/raise"


def test_a_token_refusal_is_recorded_with_the_tokens_digest() -> None:
    app = _app(TokenRejected("expired", "too old"))
    _call(app, headers={"authorization": "Bearer abc"})
    (entry,) = app.state.services.audit.entries
    assert entry.token_sha256 is not None


def test_a_missing_token_has_no_digest() -> None:
    app = _app(TokenRejected("missing", "no token"))
    _call(app)
    (entry,) = app.state.services.audit.entries
    assert entry.token_sha256 is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, 'Bearer realm="sluis"'),
        ("invalid_request", 'Bearer realm="sluis", error="invalid_request"'),
        ("invalid_token", 'Bearer realm="sluis", error="invalid_token"'),
        ("insufficient_scope", 'Bearer realm="sluis", error="insufficient_scope"'),
        ('x", realm="evil', 'Bearer realm="sluis", error="invalid_token"'),
    ],
)
def test_the_challenge_is_made_of_fixed_strings(error: str | None, expected: str) -> None:
    assert bearer_challenge(error) == expected


def test_a_body_that_fails_validation_names_each_field() -> None:
    response = _call(_app(), "POST", "/body", json={"name": "long"})
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "urn:sluis:problem:validation-error"
    assert body["title"] == "Request failed validation"
    assert body["errors"] == [
        {"loc": ["body", "name"], "msg": "String should have at most 3 characters"},
        {"loc": ["body", "count"], "msg": "Field required"},
    ]
    assert body["detail"] == (
        "body.name: String should have at most 3 characters; body.count: Field required"
    )


def test_a_validation_detail_is_cut_at_500_characters() -> None:
    response = _call(_app(), "POST", "/bodies", json=[{"name": "long"}] * 50)
    body = response.json()
    assert len(body["errors"]) == 100
    assert len(body["detail"]) == 500
    assert body["detail"].startswith("body.0.name: String should have at most 3 characters; ")


@pytest.mark.parametrize(
    ("status", "code", "title"),
    [
        (400, "bad-request", "Bad request"),
        (401, "not-authenticated", "Not authenticated"),
        (403, "forbidden", "Forbidden"),
        (404, "not-found", "Not found"),
        (406, "not-acceptable", "Not acceptable"),
        (413, "body-too-large", "Request body too large"),
        (415, "unsupported-media-type", "Unsupported media type"),
        (418, "http-error", "HTTP error"),
    ],
)
def test_http_exceptions_are_problems(status: int, code: str, title: str) -> None:
    response, body, _ = _answer(HTTPException(status, "the detail"))
    assert response.status_code == status
    assert body == {
        "type": f"urn:sluis:problem:{code}",
        "title": title,
        "status": status,
        "detail": "the detail",
        "instance": "/raise",
    }


def test_an_http_exceptions_headers_are_kept() -> None:
    response, _, _ = _answer(HTTPException(413, "big", headers={"Connection": "close"}))
    assert response.headers["connection"] == "close"


def test_405_allows_every_method_of_the_path() -> None:
    response = _call(_app(), "POST", "/things")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.json()["type"] == "urn:sluis:problem:method-not-allowed"
    assert response.json()["title"] == "Method not allowed"


def test_405_under_an_included_router_with_a_prefix() -> None:
    app = _app()
    router = APIRouter()

    @router.put("/x/{name}")
    async def put(name: str) -> str:
        return name

    app.include_router(router, prefix="/v9")
    response = _call(app, "POST", "/v9/x/abc")
    assert response.status_code == 405
    assert response.headers["allow"] == "PUT"


def test_an_unknown_path_is_not_found() -> None:
    response = _call(_app(), "GET", "/nowhere")
    assert response.status_code == 404
    assert "allow" not in response.headers
    assert response.json()["instance"] == "/nowhere"


@pytest.mark.parametrize(
    ("error", "status", "title", "code"),
    [
        (QueryError("bad query"), 400, "Invalid query", "query-invalid"),
        (PathRefused("/etc/passwd is outside"), 400, "Invalid query", "path-refused"),
        (ColumnNotAllowed("salary"), 403, "Not allowed by the usage policy", "column-not-allowed"),
        (
            AggregateRequired("aggregate"),
            403,
            "Not allowed by the usage policy",
            "aggregate-required",
        ),
        (
            AggregateNotAllowed("no"),
            403,
            "Not allowed by the usage policy",
            "aggregate-not-allowed",
        ),
        (TargetRefused("no"), 403, "Not allowed", "target-refused"),
        (SourceTimeout("slow"), 504, "The data source timed out", "source-timeout"),
        (SourceError("failed"), 502, "The data source failed", "source-error"),
        (
            ConnectorConfigError("bad config"),
            500,
            "The dataset is misconfigured",
            "connector-config",
        ),
        (ConnectorError("other"), 502, "Data error", "connector-error"),
    ],
)
def test_connector_errors_have_their_status_and_title(
    error: ConnectorError, status: int, title: str, code: str
) -> None:
    response, body, _ = _answer(error)
    assert response.status_code == status
    assert body["title"] == title
    assert body["type"] == f"urn:sluis:problem:{code}"
    assert body["detail"] == error.public_reason


def test_a_connector_error_names_its_column_and_rule() -> None:
    _, body, _ = _answer(ValueRefused("age", "int-range", "too large"))
    assert body["column"] == "age"
    assert body["rule"] == "int-range"
    _, body, _ = _answer(ColumnNotAllowed("salary"))
    assert body["column"] == "salary"
    assert "rule" not in body


def test_a_refusals_server_side_words_are_logged_not_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = TargetRefused("host 10.0.0.1 is private", public="the target is not allowed")
    with caplog.at_level("INFO", logger="sluis.http"):
        _, body, _ = _answer(error)
    assert body["detail"] == "the target is not allowed"
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sluis.http"]
    assert messages == [("WARNING", f"connector refusal on /raise: {error}")]


def test_a_source_failure_is_logged_in_full(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(SourceError("driver said x"))
    (record,) = [r for r in caplog.records if r.name == "sluis.http"]
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith("connector failure on /raise: SourceError(")
    assert record.exc_info is not None


def test_a_plain_refusal_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(QueryError("bad query"))
    assert [r for r in caplog.records if r.name == "sluis.http"] == []


def test_storage_unavailable_is_503_with_retry_after() -> None:
    response, body, _ = _answer(StorageUnavailable("db down"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert body == {
        "type": "urn:sluis:problem:storage-unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "the database is unavailable; nothing was served",
        "instance": "/raise",
    }


def test_rate_limited_is_429_with_retry_after() -> None:
    response, body, _ = _answer(RateLimited(7))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["cache-control"] == "no-store"
    assert body == {
        "type": "urn:sluis:problem:rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "too many requests from this client or address; retry after 7 s",
        "instance": "/raise",
    }


def test_an_unexpected_error_is_500_without_its_words() -> None:
    response, body, _ = _answer(RuntimeError("secret path /srv/x"))
    assert response.status_code == 500
    assert body == {
        "type": "urn:sluis:problem:internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "The gateway failed; see its log.",
        "instance": "/raise",
    }


def test_a_lone_surrogate_in_caller_text_still_renders() -> None:
    response = ProblemResponse({"detail": "a\udc80b"})
    assert json.loads(response.body) == {"detail": "a\udc80b"}
    assert response.body == b'{"detail":"a\\udc80b"}'
    assert ProblemResponse({"detail": "\u00e9"}).body == '{"detail":"\u00e9"}'.encode()


def test_a_problem_without_instance_has_none() -> None:
    response = problems.problem(409, "conflict", "Conflict", "taken", extra_field=1)
    assert json.loads(response.body) == {
        "type": "urn:sluis:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "taken",
        "extra_field": 1,
    }
    assert response.status_code == 409


# What the first mutmut run found untested: the DSP form of a problem, the operator's log
# lines, the instance of every kind, a ``missing`` token whatever its error.


class Conflict(BadRequest):
    """A DSP refusal: the process ids ride on the error."""

    def __init__(self) -> None:
        super().__init__("negotiation-conflict", "already agreed")
        self.dsp_pids = {"providerPid": "urn:p", "consumerPid": "urn:c"}


def test_a_dsp_refusal_is_also_the_dsp_error_object() -> None:
    app = _app(Conflict())
    body = _call(app, path="/dsp/negotiations/x").json()
    assert body["type"] == "urn:sluis:problem:negotiation-conflict"
    assert body["@type"] == "ContractNegotiationError"
    assert body["code"] == "negotiation-conflict"
    assert body["reason"] == ["already agreed"]
    assert (body["providerPid"], body["consumerPid"]) == ("urn:p", "urn:c")
    assert body["instance"] == "/dsp/negotiations/x"


def test_a_dsp_problem_without_pids_has_empty_ones() -> None:
    response = problems.problem(409, "x", "X", "words", instance="/dsp/negotiations/1")
    body = json.loads(response.body)
    assert (body["providerPid"], body["consumerPid"]) == ("", "")
    assert body["code"] == "x"
    assert body["reason"] == ["words"]


def test_a_lone_surrogate_among_several_fields() -> None:
    response = ProblemResponse({"a": "\udc80", "b": 1})
    assert response.body == b'{"a":"\\udc80","b":1}'


def test_a_missing_token_is_401_whatever_its_error() -> None:
    response, _, _ = _answer(TokenRejected("missing", "no token", error="invalid_request"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis"'


def test_a_validation_problem_names_its_path() -> None:
    assert _call(_app(), "POST", "/body", json={}).json()["instance"] == "/body"


def test_a_connector_problem_names_its_path() -> None:
    _, body, _ = _answer(QueryError("bad query"))
    assert body["instance"] == "/raise"


def test_405_with_a_websocket_route_in_the_app() -> None:
    response = _call(_app(), "PUT", "/things")
    assert response.headers["allow"] == "DELETE, GET"


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sluis.http"]


def test_a_misconfigured_dataset_is_logged_as_a_server_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(ConnectorConfigError("bad config"))
    (record,) = [r for r in caplog.records if r.name == "sluis.http"]
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith("connector failure on /raise: ConnectorConfigError(")


def test_a_certificate_refusal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(CertificateRejected("revoked", "it was revoked"))
    assert _logged(caplog) == [("INFO", "client certificate refused: revoked: it was revoked")]


def test_a_token_refusal_is_logged_by_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(TokenRejected("expired", "too old"))
    assert _logged(caplog) == [("INFO", "access token refused: expired")]


def test_storage_unavailable_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(StorageUnavailable("db down"))
    assert _logged(caplog) == [("ERROR", "storage unavailable on GET /raise: db down")]


def test_an_unexpected_error_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = RuntimeError("secret path /srv/x")
    with caplog.at_level("INFO", logger="sluis.http"):
        _answer(error)
    (record,) = [r for r in caplog.records if r.name == "sluis.http"]
    assert (record.levelname, record.getMessage()) == ("ERROR", "unhandled error on GET /raise")
    assert record.exc_info is not None
    assert record.exc_info[1] is error
