"""OpenTelemetry for the gateway: request traces, metrics, and the trace id for the audit log.

:func:`configure` builds a tracer and a meter provider from the standard ``OTEL_*`` variables
and keeps them on the returned :class:`Telemetry`; nothing global is touched unless asked, so
a process (a test run) may build many. Unlike the OpenTelemetry default, an unset
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` means ``none``: a fresh gateway makes no
outbound telemetry connection and prints nothing. See docs/telemetry.md.

Secrets stay out of spans: query strings are replaced by ``[REDACTED]``, attributes whose key
names a credential (authorization, cookie, token, secret, password, api key) are redacted, the
gateway's own spans record only the exception type, and incoming trace context is ignored
unless the caller trusts it. Misconfiguration raises :class:`~gateway.settings.SettingsError`.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from opentelemetry import context, metrics, propagate, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import (
    HTTPXClientInstrumentor,
    RequestInfo,
    ResponseInfo,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import __version__
from gateway.settings import SettingsError

SPAN_AUTHENTICATE = "sluis.authenticate"  # client certificate + bearer token checks
SPAN_POLICY = "sluis.policy"  # the ODRL decision
SPAN_AUDIT = "sluis.audit"  # appending the audit entry
SPAN_CONNECTOR = "sluis.connector"  # the upstream data source call
UNTRACED_PATHS = frozenset({"/healthz", "/readyz"})
REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(r"authorization|cookie|token|secret|password|api[-_.]?key", re.I)
_URL_KEYS = frozenset({"http.url", "url.full", "http.target", "url.query"})
_SECRET_HEADERS = ["authorization", "proxy-authorization", "cookie", "set-cookie", ".*token.*"]
# Context headers of common propagators; the configured propagator's own fields are added.
_CONTEXT_HEADERS = {"traceparent", "tracestate", "baggage", "b3", "uber-trace-id"}
_EXPORTERS = frozenset({"otlp", "otlp_proto_http", "console", "none"})
_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0]
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Telemetry:
    """The providers, instruments and instrumentation of one gateway app."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        *,
        traced: bool = True,
        metered: bool = True,
    ) -> None:
        """``traced=False``: spans are sampled by nobody (no exporter): a request gets its trace
        id without the ASGI instrumentation, and gateway spans reuse the request's (unrecorded)
        span. ``metered=False``: no metric reader, so requests are not measured per route."""
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.enabled = isinstance(tracer_provider, TracerProvider)
        self.traced = traced
        self.metered = metered
        self.tracer = tracer_provider.get_tracer("sluis", __version__)
        meter = meter_provider.get_meter("sluis", __version__)
        self.requests = meter.create_counter("sluis.requests", "{request}", "Requests served")
        self.decisions = meter.create_counter("sluis.decisions", "{decision}", "Policy decisions")
        self.latency = meter.create_histogram(
            "sluis.request.duration",
            "s",
            "Time to serve a request",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.bytes_out = meter.create_counter("sluis.bytes_out", "By", "Response body bytes")
        self._closed = False

    @contextmanager
    def span(self, name: str, **attributes: AttributeValue) -> Iterator[Span]:
        """A child span of the current one; keyword attributes are recorded as ``sluis.<key>``.

        A raised exception marks the span as an error with its type only (messages can
        carry request data), and propagates.
        """
        if not self.traced:
            current = trace.get_current_span()
            if current.get_span_context().is_valid:  # recorded by nobody: the trace id is all
                yield current
                return
        clean = {f"sluis.{key}": _clean(key, value) for key, value in attributes.items()}
        with self.tracer.start_as_current_span(
            name, attributes=clean, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
                raise

    def record_decision(
        self, result: Literal["permit", "deny"], *, reason: str | None = None
    ) -> None:
        """Count one policy decision; ``reason`` must be a stable code (low cardinality).
        Without a metric reader nobody could read the count: nothing is counted."""
        if not self.metered:
            return
        attributes = {"result": result} if reason is None else {"result": result, "reason": reason}
        self.decisions.add(1, attributes)

    def instrument(self, app: FastAPI, *, trust_incoming_trace_context: bool = False) -> None:
        """Trace and measure every request to ``app`` except the health probes.

        Call once, in the app factory, before the app serves. Incoming ``traceparent`` (and
        other propagation headers) are dropped unless ``trust_incoming_trace_context``: a
        consumer must not choose the trace id that lands in the audit log.

        Without anyone to read spans (``traced`` false, the default without an exporter) the
        OpenTelemetry ASGI instrumentation is not installed: the edge middleware gives each
        request an unrecorded span of its own (a fresh trace id, or the trusted caller's),
        which is all the audit entries need, at a fraction of the cost.
        """
        if not self.enabled or getattr(app.state, "sluis_telemetry", None) is not None:
            return
        app.state.sluis_telemetry = self
        if self.traced:
            FastAPIInstrumentor.instrument_app(
                app,
                server_request_hook=_scrub_server_span,
                tracer_provider=self.tracer_provider,
                meter_provider=self.meter_provider,
                excluded_urls=_excluded_urls(),
                http_capture_headers_sanitize_fields=_SECRET_HEADERS + _env_list(_SANITIZE_ENV),
                exclude_spans=["receive", "send"],
            )
        strip = frozenset() if trust_incoming_trace_context else _context_headers()
        build = app.build_middleware_stack

        def build_with_edge() -> ASGIApp:
            return _EdgeMiddleware(build(), self, app.router, strip)

        # Outermost of all, after the instrumentation's own wrapper: routes are not in the
        # scope it sees (ClientCertificateMiddleware copies the scope), so it matches them.
        app.build_middleware_stack = build_with_edge  # type: ignore[method-assign]

    def instrument_client(self, client: httpx.AsyncClient | httpx.Client) -> None:
        """Trace the outbound requests of a client the gateway creates (e.g. a connector's)."""
        if not self.enabled:
            return
        if isinstance(client, httpx.AsyncClient):
            HTTPXClientInstrumentor.instrument_client(
                client,
                tracer_provider=self.tracer_provider,
                meter_provider=self.meter_provider,  # instrumentation-httpx 0.55b0 on
                request_hook=_async_scrub_request,
                response_hook=_async_scrub_response,
            )
        else:
            HTTPXClientInstrumentor.instrument_client(
                client,
                tracer_provider=self.tracer_provider,
                meter_provider=self.meter_provider,  # instrumentation-httpx 0.55b0 on
                request_hook=_scrub_request,
                response_hook=_scrub_response,
            )

    def shutdown(self) -> None:
        """Flush and stop the exporters; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.shutdown()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown()


def configure(
    service_name: str = "sluis",
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    set_global: bool = False,
) -> Telemetry:
    """Build telemetry from the ``OTEL_*`` environment.

    ``span_exporter`` / ``metric_reader`` are added to those the environment names (tests
    pass in-memory ones; spans go to it synchronously). ``OTEL_SDK_DISABLED=true`` gives a
    no-op Telemetry. ``set_global`` also installs the providers process-wide (once per
    process: the API ignores a second install). Raises SettingsError for an exporter name
    or OTLP protocol this build cannot serve.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
    resource = _resource(service_name)
    exporters = _span_exporters()
    # No exporter (the default): spans would be recorded for nobody. Not sampled, they cost
    # next to nothing and still carry trace ids (from a caller's traceparent, or new ones),
    # which the audit entries record. An explicit OTEL_TRACES_SAMPLER is left to the SDK.
    unread = not exporters and span_exporter is None and not os.environ.get("OTEL_TRACES_SAMPLER")
    tracer_provider = TracerProvider(
        sampler=ALWAYS_OFF if unread else None, resource=resource, shutdown_on_exit=False
    )
    for exporter in exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    readers: list[MetricReader] = [PeriodicExportingMetricReader(e) for e in _metric_exporters()]
    if metric_reader is not None:
        readers.append(metric_reader)
    meter_provider = MeterProvider(readers, resource=resource, shutdown_on_exit=False)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, traced=not unread, metered=bool(readers))


def current_trace_id() -> str | None:
    """The 32-hex-digit trace id of the current span, or None outside a (valid) trace."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


# --- configuration from the environment -------------------------------------------------

_SANITIZE_ENV = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _exporter_names(signal: Literal["TRACES", "METRICS"]) -> list[str]:
    variable = f"OTEL_{signal}_EXPORTER"
    names = [name.lower() for name in _env_list(variable, "none")]
    unknown = sorted(set(names) - _EXPORTERS)
    if unknown:
        raise SettingsError(f"{variable}: unknown exporter {unknown}; use otlp, console or none")
    if any(name.startswith("otlp") for name in names):
        protocol = os.environ.get(
            f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL",
            os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        if protocol != "http/protobuf":
            raise SettingsError(f"OTLP protocol {protocol!r} is not built in; use http/protobuf")
    return sorted({name for name in names if name != "none"})


def _span_exporters() -> list[SpanExporter]:
    return [_span_exporter(name) for name in _exporter_names("TRACES")]


def _span_exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(out=sys.stdout)  # the stdout of now, not of import time
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - OTLP (and requests) load only when configured
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()  # endpoint, headers, TLS, timeout: OTEL_EXPORTER_OTLP_*


def _metric_exporters() -> list[MetricExporter]:
    return [_metric_exporter(name) for name in _exporter_names("METRICS")]


def _metric_exporter(name: str) -> MetricExporter:
    if name == "console":
        return ConsoleMetricExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415 - as above
        OTLPMetricExporter,
    )

    return OTLPMetricExporter()


def _resource(service_name: str) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win; ours fill what they leave out."""
    detected = Resource.create()
    ours: dict[str, AttributeValue] = {}
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        ours[SERVICE_NAME] = service_name
    if SERVICE_VERSION not in detected.attributes:
        ours[SERVICE_VERSION] = __version__
    return detected.merge(Resource(ours))


def _excluded_urls() -> str:
    ours = [rf"://[^/]+{re.escape(path)}$" for path in sorted(UNTRACED_PATHS)]
    theirs = _env_list("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or _env_list(
        "OTEL_PYTHON_EXCLUDED_URLS"
    )
    return ",".join(ours + theirs)


def _context_headers() -> frozenset[bytes]:
    fields = _CONTEXT_HEADERS | set(propagate.get_global_textmap().fields)
    return frozenset(name.lower().encode("latin-1") for name in fields)


# --- keeping secrets out of spans -------------------------------------------------------


def _clean(key: str, value: AttributeValue) -> AttributeValue:
    if _SECRET_KEY.search(key):
        return REDACTED
    if key in _URL_KEYS and isinstance(value, str):
        if key == "url.query":
            return REDACTED if value else value
        base, question, _query = value.partition("?")
        return f"{base}?{REDACTED}" if question else value
    return value


def _scrub(span: Span) -> None:
    """Redact secret-named and query-bearing attributes already set on an SDK span."""
    if not isinstance(span, ReadableSpan) or span.attributes is None:
        return
    for key, value in list(span.attributes.items()):
        clean = _clean(key, value)
        if clean != value:
            span.set_attribute(key, clean)


def _scrub_server_span(span: Span, _scope: dict[str, Any]) -> None:
    _scrub(span)


def _scrub_request(span: Span, _request: RequestInfo) -> None:
    _scrub(span)


def _scrub_response(span: Span, _request: RequestInfo, _response: ResponseInfo) -> None:
    _scrub(span)


async def _async_scrub_request(span: Span, _request: RequestInfo) -> None:
    _scrub(span)


async def _async_scrub_response(span: Span, _request: RequestInfo, _resp: ResponseInfo) -> None:
    _scrub(span)


# --- the edge: trace-context stripping and request metrics ------------------------------


class _EdgeMiddleware:
    """Drops untrusted propagation headers; without the ASGI instrumentation starts the
    request's unrecorded span; counts requests, latency and bytes per route (when metered)."""

    def __init__(
        self, app: ASGIApp, telemetry: Telemetry, router: Router, strip: frozenset[bytes]
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.router = router
        self.strip = strip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.strip:
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in self.strip]
            scope = {**scope, "headers": headers}
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        telemetry = self.telemetry
        handle = self._measured if telemetry.metered else self.app
        if telemetry.traced:  # the ASGI instrumentation (inside) starts the server span
            await handle(scope, receive, send)
            return
        token = context.attach(self._request_span(scope))
        try:
            await handle(scope, receive, send)
        finally:
            context.detach(token)

    def _request_span(self, scope: Scope) -> context.Context:
        """A context holding the request's unrecorded server span: the trusted caller's trace
        (propagation headers are left only when trusted: ``strip`` is empty) or a new one."""
        parent = None
        if not self.strip:
            headers = scope["headers"]
            carrier = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
            parent = propagate.extract(carrier)
        span = self.telemetry.tracer.start_span("request", parent, kind=SpanKind.SERVER)
        return trace.set_span_in_context(span, parent)

    async def _measured(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status, sent = 500, 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
            route = _route(self.router.routes, scope)
            attributes = {
                "http.route": route,
                "http.request.method": method,
                "http.response.status_code": status,
            }
            self.telemetry.requests.add(1, attributes)
            self.telemetry.latency.record(time.perf_counter() - start, attributes)
            self.telemetry.bytes_out.add(sent, {"http.route": route})


def _route(routes: Sequence[Any], scope: Scope) -> str:
    """The matched route template (never the raw path: ids stay out of metric labels)."""
    return _matched(routes, scope, "")[1]


def _matched(routes: Sequence[Any], scope: Scope, prefix: str) -> tuple[Match, str]:
    """The first route matching fully, else the first matching partly (a 405), with its
    template. Newer FastAPI nests an included router as one route without a path: its own
    routes are searched, under the prefix it was included with (as problems._route_paths)."""
    partial: tuple[Match, str] = (Match.NONE, "unmatched")
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found = _matched(included.routes, *_within(scope, route, prefix))
        else:
            match, _child = route.matches(scope)
            found = (match, prefix + str(getattr(route, "path", "unmatched")))
        if found[0] is Match.FULL:
            return found
        if found[0] is Match.PARTIAL and partial[0] is Match.NONE:
            partial = found
    return partial


def _within(scope: Scope, included: Any, prefix: str) -> tuple[Scope, str]:
    """The scope as the included router's own routes see it, and the prefix so far."""
    more = str(getattr(getattr(included, "include_context", None), "prefix", "") or "")
    if not more:
        return scope, prefix
    path = str(scope.get("path", ""))
    inner = path[len(more) :] if path.startswith(more) else "\0"  # \0: matches no route
    return {**scope, "path": inner}, prefix + more
