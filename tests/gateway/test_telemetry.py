"""gateway.telemetry: spans per request, metrics, the audit trace id, and no secrets in spans."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from opentelemetry.util.types import AttributeValue
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.settings import SettingsError
from gateway.telemetry import (
    REDACTED,
    SPAN_AUDIT,
    SPAN_AUTHENTICATE,
    SPAN_CONNECTOR,
    SPAN_POLICY,
    Telemetry,
    _clean,
    configure,
    current_trace_id,
)

BEARER = "Bearer s3cr3t-bearer-value"
QUERY_SECRET = "q-s3cr3t-token"
FOREIGN_TRACE = "0af7651916cd43dd8448eb211c80319c"


@dataclass
class Harness:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without OTEL_* settings."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def harness() -> Iterator[Harness]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = configure(span_exporter=spans, metric_reader=reader)
    yield Harness(telemetry, spans, reader)
    telemetry.shutdown()


class CopyScope:
    """Like ClientCertificateMiddleware: hands a copy of the scope downstream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(dict(scope), receive, send)


def make_app(telemetry: Telemetry, **instrument: bool) -> tuple[FastAPI, list[str | None]]:
    """A small app whose route authenticates, decides and records what it saw."""
    app = FastAPI()
    seen: list[str | None] = []

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        seen.append(current_trace_id())
        return {"status": "ok"}

    @app.get("/data/{item}")
    async def data(item: str, request: Request) -> JSONResponse:
        seen.append(current_trace_id())
        with telemetry.span(SPAN_AUTHENTICATE, participant="NL.KVK.1"):
            assert request.headers["authorization"] == BEARER
        with telemetry.span(SPAN_POLICY, policy="p1"):
            result: Literal["permit", "deny"] = "deny" if item == "secret" else "permit"
            telemetry.record_decision(result, reason="prohibited" if result == "deny" else None)
        if result == "deny":
            return JSONResponse({"detail": "denied"}, status_code=403)
        return JSONResponse({"item": item}, headers={"set-cookie": "sid=r3sp-c00kie"})

    app.add_middleware(CopyScope)
    telemetry.instrument(app, **instrument)
    return app, seen


def call(
    app: FastAPI, *paths: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            sent = {"authorization": BEARER, **(headers or {})}
            return [await client.request(method, path, headers=sent) for path in paths]

    return asyncio.run(run())


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:  # mixed point types
    data = reader.get_metrics_data()
    if data is None:  # nothing was recorded at all
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def all_attribute_text(spans: tuple[ReadableSpan, ...]) -> str:
    parts = [k + "=" + str(v) for s in spans for k, v in (s.attributes or {}).items()]
    parts += [
        k + "=" + str(v) for s in spans for e in s.events for k, v in (e.attributes or {}).items()
    ]
    return "\n".join(parts)


# --- traces -------------------------------------------------------------------------------


def test_one_server_span_per_request_with_gateway_spans_nested(harness: Harness) -> None:
    app, seen = make_app(harness.telemetry)
    call(app, "/data/a")
    spans = harness.spans.get_finished_spans()
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.name == "GET /data/{item}"
    assert server.context is not None
    for name in (SPAN_AUTHENTICATE, SPAN_POLICY):
        child = by_name(spans, name)
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
        assert child.context is not None
        assert child.context.trace_id == server.context.trace_id
    assert seen == [format_trace_id(server.context.trace_id)]
    assert by_name(spans, SPAN_AUTHENTICATE).attributes == {"sluis.participant": "NL.KVK.1"}
    assert len(spans) == 3  # receive/send spans are off


def test_each_request_gets_its_own_trace(harness: Harness) -> None:
    app, seen = make_app(harness.telemetry)
    call(app, "/data/a", "/data/b")
    assert len(set(seen)) == 2
    assert all(t is not None and len(t) == 32 for t in seen)


def test_health_probes_produce_no_span_and_no_metric(harness: Harness) -> None:
    app, seen = make_app(harness.telemetry)
    call(app, "/healthz")
    assert harness.spans.get_finished_spans() == ()
    assert seen == [None]
    assert metric_points(harness.metrics, "sluis.requests") == []


@pytest.mark.parametrize("capture", [None, "authorization,cookie,user-agent"])
def test_no_secret_reaches_a_span(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capture: str | None
) -> None:
    if capture is not None:  # an operator turned header capture on: values still redacted
        monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", capture)
        monkeypatch.setenv(
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "set-cookie"
        )
    app, _ = make_app(harness.telemetry)
    call(app, f"/data/a?access_token={QUERY_SECRET}&x=1", headers={"cookie": "sid=c00kie"})
    text = all_attribute_text(harness.spans.get_finished_spans())
    for secret in ("s3cr3t-bearer-value", QUERY_SECRET, "access_token", "c00kie", "r3sp"):
        assert secret not in text
    assert f"?{REDACTED}" in text
    if capture is not None:
        assert f"http.request.header.authorization={REDACTED}" in text
        assert f"http.response.header.set_cookie=('{REDACTED}',)" in text


def test_incoming_trace_context_is_ignored_by_default(harness: Harness) -> None:
    app, seen = make_app(harness.telemetry)
    call(app, "/data/a", headers={"traceparent": f"00-{FOREIGN_TRACE}-b7ad6b7169203331-01"})
    [server] = [s for s in harness.spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.parent is None
    assert seen[0] != FOREIGN_TRACE


def test_trusted_incoming_trace_context_is_joined(harness: Harness) -> None:
    app, seen = make_app(harness.telemetry, trust_incoming_trace_context=True)
    call(app, "/data/a", headers={"traceparent": f"00-{FOREIGN_TRACE}-b7ad6b7169203331-01"})
    [server] = [s for s in harness.spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.parent is not None
    assert format_span_id(server.parent.span_id) == "b7ad6b7169203331"
    assert seen == [FOREIGN_TRACE]


def test_gateway_span_records_only_the_exception_type(harness: Harness) -> None:
    with (
        pytest.raises(ValueError, match="secret detail"),
        harness.telemetry.span(SPAN_CONNECTOR, token="abc", rows=3),
    ):
        raise ValueError("secret detail")
    [span] = harness.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError"
    assert span.events == ()
    assert span.attributes == {"sluis.token": REDACTED, "sluis.rows": 3, "error.type": "ValueError"}


def test_current_trace_id_outside_a_span_is_none() -> None:
    assert current_trace_id() is None


def test_outbound_httpx_calls_are_traced_and_scrubbed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "authorization")
    upstream_saw: list[httpx.Headers] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        upstream_saw.append(request.headers)
        return httpx.Response(200, json={"rows": []})

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
            harness.telemetry.instrument_client(client)
            with harness.telemetry.span(SPAN_CONNECTOR):
                url = f"https://upstream.test/rows?access_token={QUERY_SECRET}"
                await client.get(url, headers={"authorization": BEARER})

    asyncio.run(run())
    spans = harness.spans.get_finished_spans()
    [client_span] = [s for s in spans if s.kind is SpanKind.CLIENT]
    connector = by_name(spans, SPAN_CONNECTOR)
    assert client_span.parent is not None
    assert connector.context is not None
    assert client_span.parent.span_id == connector.context.span_id
    text = all_attribute_text(spans)
    assert "s3cr3t-bearer-value" not in text
    assert QUERY_SECRET not in text
    assert upstream_saw[0]["traceparent"].split("-")[1] == format_trace_id(
        connector.context.trace_id
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("url.query", "access_token=abc", REDACTED),
        ("url.full", "https://h/p?access_token=abc", f"https://h/p?{REDACTED}"),
        ("http.url", "https://h/p", "https://h/p"),
        ("http.target", "/p?a=1", f"/p?{REDACTED}"),
        ("http.request.header.x_api_key", ("k",), REDACTED),
        ("http.response.header.set_cookie", ("c",), REDACTED),
        ("sluis.client_secret", "s", REDACTED),
        ("http.route", "/data/{item}", "/data/{item}"),
    ],
)
def test_redaction_table(key: str, value: AttributeValue, expected: AttributeValue) -> None:
    assert _clean(key, value) == expected


# --- metrics ------------------------------------------------------------------------------


def test_decisions_are_counted_by_result(harness: Harness) -> None:
    app, _ = make_app(harness.telemetry)
    call(app, "/data/a", "/data/b", "/data/secret")
    values = {
        tuple(sorted(p.attributes.items())): p.value
        for p in metric_points(harness.metrics, "sluis.decisions")
    }
    assert values == {
        (("result", "permit"),): 2,
        (("reason", "prohibited"), ("result", "deny")): 1,
    }


def test_requests_latency_and_bytes_by_route(harness: Harness) -> None:
    app, _ = make_app(harness.telemetry)
    responses = call(app, "/data/a", "/data/b", "/data/secret", "/nowhere")
    [latency] = [
        p
        for p in metric_points(harness.metrics, "sluis.request.duration")
        if isinstance(p, HistogramDataPoint)
        and p.attributes
        == {
            "http.route": "/data/{item}",
            "http.request.method": "GET",
            "http.response.status_code": 200,
        }
    ]
    assert latency.count == 2
    assert 0 < latency.sum < 5
    requests = {
        (p.attributes["http.route"], p.attributes["http.response.status_code"]): p.value
        for p in metric_points(harness.metrics, "sluis.requests")
    }
    assert requests == {("/data/{item}", 200): 2, ("/data/{item}", 403): 1, ("unmatched", 404): 1}
    sent = {
        p.attributes["http.route"]: p.value
        for p in metric_points(harness.metrics, "sluis.bytes_out")
    }
    assert sent["/data/{item}"] == sum(len(r.content) for r in responses[:3])


# --- configuration ------------------------------------------------------------------------


def test_sdk_disabled_produces_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = configure(span_exporter=spans, metric_reader=reader)
    app, seen = make_app(telemetry)
    call(app, "/data/a")
    telemetry.shutdown()
    assert not telemetry.enabled
    assert spans.get_finished_spans() == ()
    assert seen == [None]


@pytest.mark.parametrize("value", ["none", "NONE", " none ", ""])
def test_exporter_none_is_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", value)
    spans = InMemorySpanExporter()
    telemetry = configure(span_exporter=spans)
    with telemetry.span(SPAN_POLICY):
        pass
    telemetry.shutdown()
    assert [s.name for s in spans.get_finished_spans()] == [SPAN_POLICY]


def test_console_exporter_prints_spans(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    telemetry = configure()
    with telemetry.span(SPAN_AUDIT):
        pass
    telemetry.shutdown()
    assert f'"name": "{SPAN_AUDIT}"' in capsys.readouterr().out


def test_otlp_trace_exporter_is_built_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    configure().shutdown()  # nothing was recorded, so nothing is sent


@pytest.mark.parametrize("signal", ["TRACES", "METRICS"])
def test_unknown_exporter_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, signal: str) -> None:
    monkeypatch.setenv(f"OTEL_{signal}_EXPORTER", "otlp,zipkin")
    with pytest.raises(SettingsError, match=f"OTEL_{signal}_EXPORTER: unknown exporter"):
        configure()


def test_grpc_protocol_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(SettingsError, match="http/protobuf"):
        configure()


def test_service_name_defaults_to_sluis_and_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    names = []
    for env_name in (None, "sluis-eu-west"):
        if env_name is not None:
            monkeypatch.setenv("OTEL_SERVICE_NAME", env_name)
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        spans = InMemorySpanExporter()
        telemetry = configure(span_exporter=spans)
        with telemetry.span(SPAN_POLICY):
            pass
        telemetry.shutdown()
        [span] = spans.get_finished_spans()
        assert span.resource.attributes["deployment.environment"] == "test"
        names.append(span.resource.attributes["service.name"])
    assert names == ["sluis", "sluis-eu-west"]


def test_configure_instrument_and_shutdown_repeat_safely(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        spans = InMemorySpanExporter()
        telemetry = configure(span_exporter=spans, metric_reader=InMemoryMetricReader())
        app, _ = make_app(telemetry)
        telemetry.instrument(app)  # a second call is a no-op
        call(app, "/data/a")
        telemetry.shutdown()
        telemetry.shutdown()
        assert len([s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]) == 1
    assert [r.getMessage() for r in caplog.records if r.levelname != "DEBUG"] == []


def test_without_an_exporter_spans_are_not_recorded_but_trace_ids_remain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default (no exporter): nothing would read a span, so none is recorded (the cost
    of a request's spans is gone); the trace id the audit entries carry is still there."""
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    telemetry = configure()
    with telemetry.span(SPAN_POLICY):
        assert not trace.get_current_span().is_recording()
        trace_id = current_trace_id()
    telemetry.shutdown()
    assert trace_id is not None
    assert len(trace_id) == 32


def test_an_explicit_sampler_is_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    telemetry = configure()
    with telemetry.span(SPAN_POLICY):
        assert trace.get_current_span().is_recording()
    telemetry.shutdown()


# --- without an exporter: no ASGI instrumentation, trace ids for the audit log remain ------


def traced_nested_app(telemetry: Telemetry, *, trust: bool = False) -> tuple[FastAPI, list[Any]]:
    """An app recording the request's trace id outside and inside gateway spans."""
    app = FastAPI()
    seen: list[Any] = []

    @app.get("/data/{item}")
    async def data(item: str) -> dict[str, str]:
        outside = current_trace_id()
        with telemetry.span(SPAN_AUTHENTICATE), telemetry.span(SPAN_AUDIT, item=item):
            seen.append((outside, current_trace_id()))
        return {"item": item}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        seen.append(current_trace_id())
        return {"status": "ok"}

    app.add_middleware(CopyScope)
    telemetry.instrument(app, trust_incoming_trace_context=trust)
    return app, seen


def untraced() -> Telemetry:
    """The default telemetry: no exporter, no sampler, no metric reader."""
    telemetry = configure()
    assert not telemetry.traced
    assert not telemetry.metered
    return telemetry


def test_without_an_exporter_the_asgi_instrumentation_is_not_installed() -> None:
    telemetry = untraced()
    app, seen = traced_nested_app(telemetry)
    call(app, "/data/a")
    telemetry.shutdown()
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert len(seen) == 1


def test_without_an_exporter_each_request_has_its_own_trace_id_in_its_spans() -> None:
    telemetry = untraced()
    app, seen = traced_nested_app(telemetry)
    call(app, "/data/a", "/data/b", "/healthz")
    telemetry.shutdown()
    (a_out, a_in), (b_out, b_in), probe = seen
    assert a_out is not None
    assert b_out is not None
    assert len(a_out) == len(b_out) == 32
    assert int(a_out, 16) != 0
    assert a_out != b_out
    assert (a_in, b_in) == (a_out, b_out)  # gateway spans stay in the request's trace
    assert probe is None  # probes are not traced


def test_without_an_exporter_incoming_trace_context_is_ignored_by_default() -> None:
    telemetry = untraced()
    app, seen = traced_nested_app(telemetry)
    call(app, "/data/a", headers={"traceparent": f"00-{FOREIGN_TRACE}-b7ad6b7169203331-01"})
    telemetry.shutdown()
    [(outside, inside)] = seen
    assert outside is not None
    assert FOREIGN_TRACE not in (outside, inside)


def test_without_an_exporter_trusted_incoming_trace_context_is_joined() -> None:
    telemetry = untraced()
    app, seen = traced_nested_app(telemetry, trust=True)
    call(app, "/data/a", headers={"traceparent": f"00-{FOREIGN_TRACE}-b7ad6b7169203331-01"})
    telemetry.shutdown()
    assert seen == [(FOREIGN_TRACE, FOREIGN_TRACE)]


def test_without_an_exporter_a_reader_still_measures_requests_by_route() -> None:
    reader = InMemoryMetricReader()
    telemetry = configure(metric_reader=reader)
    assert not telemetry.traced
    app, _seen = traced_nested_app(telemetry)
    call(app, "/data/a")
    [point] = metric_points(reader, "sluis.requests")
    telemetry.shutdown()
    assert point.attributes["http.route"] == "/data/{item}"
    assert point.value == 1


def test_a_route_of_an_included_router_is_labelled_with_its_template(harness: Harness) -> None:
    """Every gateway route lives in an included router, which FastAPI nests (one route of
    the app stands for the whole router): the label is still the route's own template,
    prefix and all, never "unmatched" and never the raw path."""
    app, _ = make_app(harness.telemetry)
    router = APIRouter(prefix="/v1/things")

    @router.get("/{thing}/parts")
    async def parts(thing: str) -> dict[str, str]:
        return {"thing": thing}

    app.include_router(router)
    app.include_router(router, prefix="/mirror")  # included again, under a prefix of its own
    call(app, "/v1/things/t-1/parts", "/v1/things/t-2/parts", "/v1/things/t-3/nothing")
    call(app, "/mirror/v1/things/t-4/parts", "/mirror/nothing")
    call(app, "/v1/things/t-5/parts", method="DELETE")
    requests = {
        (p.attributes["http.route"], p.attributes["http.response.status_code"]): p.value
        for p in metric_points(harness.metrics, "sluis.requests")
    }
    assert requests == {
        ("/v1/things/{thing}/parts", 200): 2,
        ("/mirror/v1/things/{thing}/parts", 200): 1,
        ("/v1/things/{thing}/parts", 405): 1,
        ("unmatched", 404): 2,
    }
