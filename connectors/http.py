"""REST APIs through httpx: tabular (JSON array or JSON lines mapped to a schema) and pass-through.

Every request goes through the same guarded fetch: the SSRF guard on the resolved address
(connecting to that address, with the original Host and TLS server name), timeouts, a cap
on the response size (also when the server's Content-Length is absent or lies), and
redirects followed only within the same origin, by the rules of RFC 9110 (a 303 turns into
a GET without a body; 301/302 turn a POST into a GET; 307/308 keep both). The path is sent
exactly as given (no dot-segment normalisation). A request that never reached the upstream
(no connection) is retried for idempotent methods; a timeout, after which the upstream may
have acted, is retried for safe methods only (GET, HEAD, OPTIONS). There is no cookie jar:
an upstream's ``Set-Cookie`` is never stored, so it never reaches another consumer's call.
Nothing is pushed down: the gateway filters, aggregates, orders and limits the rows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from connectors._arrow import pa
from connectors.base import Batches, Connector
from connectors.errors import (
    ConnectorConfigError,
    SchemaMismatch,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
    TargetRefused,
)
from connectors.http_guard import check_base_url, parse_networks, resolve
from connectors.plan import NONE, Pushdown
from connectors.query import Query

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT = SAFE | {"PUT", "DELETE"}
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PathCheck = Callable[[str, str], None]  # (method, path): raises TargetRefused


def _no_cookies() -> CookieJar:
    """A jar that accepts and returns nothing: no upstream cookie outlives its response."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@dataclass(frozen=True)
class HttpConfig:
    """An upstream API. ``allow_networks`` lists the exact non-public networks it may reach."""

    base_url: str
    path: str = "/"
    schema: pa.Schema | None = None  # tabular mode: the rows' schema
    lines: bool = False  # tabular mode: JSON lines instead of a JSON array
    timeout: float = 10.0
    max_bytes: int = 64 * 1024 * 1024
    retries: int = 2
    allow_networks: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=())  # e.g. the provider's API key


@dataclass(frozen=True)
class Fetched:
    """A complete, size-capped upstream response."""

    status: int
    headers: httpx.Headers
    body: bytes


class HttpFetcher:
    """The guarded fetch both modes use."""

    def __init__(
        self, config: HttpConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._allowed = parse_networks(config.allow_networks)
        self._origin = check_base_url(config.base_url)
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(config.timeout),
            follow_redirects=False,
            trust_env=False,  # no proxies or netrc picked up from the environment
            cookies=_no_cookies(),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def fetch(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Any = None,
        check: PathCheck | None = None,
    ) -> Fetched:
        """``method path`` against the configured origin, retried where HTTP allows it.

        ``path`` is sent exactly as given; ``check`` vets every redirect's target too.
        """
        url = self._origin.copy_with(raw_path=path.encode("ascii", "replace"))
        if url.raw_path != path.encode():
            raise TargetRefused("the path would not be sent as given")
        for attempt in range(1 + self._config.retries):
            try:
                return await self._follow(method, url, body, params, check)
            except (SourceUnavailable, SourceTimeout) as exc:
                if attempt == self._config.retries or not _retryable(method, exc):
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _follow(
        self, method: str, url: httpx.URL, body: bytes | None, params: Any, check: PathCheck | None
    ) -> Fetched:
        for _ in range(MAX_REDIRECTS + 1):
            fetched = await self._once(method, url, body, params)
            location = fetched.headers.get("location")
            if fetched.status not in REDIRECTS or location is None:
                return fetched
            url = self._same_origin(url.join(location))
            method, body = _redirected(method, fetched.status, body)
            if check is not None:
                check(method, url.path)
            params = None
        raise SourceRejected("too many redirects")

    def _same_origin(self, url: httpx.URL) -> httpx.URL:
        if (url.scheme, url.host, url.port) != (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        ):
            raise TargetRefused("the upstream redirected to another origin")
        return url

    async def _once(self, method: str, url: httpx.URL, body: bytes | None, params: Any) -> Fetched:
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await resolve(url.host, port, self._allowed)
        pinned = url.copy_with(host=str(address))
        headers = dict(self._config.headers) | {"host": url.netloc.decode("ascii")}
        request = self._client.build_request(
            method, pinned, content=body, params=params, headers=headers
        )
        request.extensions["sni_hostname"] = url.host
        try:
            async with asyncio.timeout(self._config.timeout * 3):
                response = await self._client.send(request, stream=True)
                try:
                    data = await self._read(response)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise SourceTimeout("the upstream was too slow") from exc
        except httpx.TimeoutException as exc:
            raise SourceTimeout("the upstream was too slow") from exc
        except httpx.ConnectError as exc:
            raise SourceUnavailable("cannot connect to the upstream") from exc
        except httpx.HTTPError as exc:
            raise SourceRejected(f"the upstream broke the protocol ({type(exc).__name__})") from exc
        return Fetched(response.status_code, response.headers, data)

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._config.max_bytes:
            raise SourceRejected("the upstream response is larger than the cap")
        parts, size = [], 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > self._config.max_bytes:
                raise SourceRejected("the upstream response is larger than the cap")
            parts.append(chunk)
        return b"".join(parts)


def _retryable(method: str, exc: Exception) -> bool:
    """Timeouts (the upstream may have acted) for safe methods; no connection for idempotent."""
    return method in (SAFE if isinstance(exc, SourceTimeout) else IDEMPOTENT)


def _redirected(method: str, status: int, body: bytes | None) -> tuple[str, bytes | None]:
    """The method and body a redirect asks for (RFC 9110 section 15.4)."""
    if status == 303 and method != "HEAD":  # noqa: PLR2004 (See Other)
        return "GET", None
    if status in (301, 302) and method == "POST":
        return "GET", None
    return method, body


class HttpTableConnector(Connector):
    """Rows from a REST endpoint answering a JSON array of objects, or JSON lines."""

    kind = "http"

    def __init__(
        self,
        name: str,
        config: HttpConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        description: str = "",
    ) -> None:
        super().__init__(name, description=description)
        if config.schema is None:
            raise ConnectorConfigError("a tabular HTTP dataset needs a declared schema")
        self._declared: pa.Schema = config.schema
        self._config = config
        self._fetcher = HttpFetcher(config, transport)
        origin, path = check_base_url(config.base_url), config.path.encode()
        if not path.startswith(b"/") or origin.copy_with(raw_path=path).raw_path != path:
            raise ConnectorConfigError("path must be an absolute path without dot segments")

    @property
    def pushdown(self) -> frozenset[Pushdown]:
        """Nothing: the gateway does it all."""
        return NONE

    async def aclose(self) -> None:
        """Close the client."""
        await super().aclose()
        await self._fetcher.aclose()

    async def _schema(self) -> pa.Schema:
        return self._declared

    async def _batches(self, query: Query) -> Batches:
        fetched = await self._fetcher.fetch("GET", self._config.path)
        if fetched.status != 200:  # noqa: PLR2004 (HTTP OK)
            raise SourceRejected(f"the upstream answered {fetched.status}")
        rows = _rows(fetched.body, lines=self._config.lines)
        schema = pa.schema([self._declared.field(c) for c in query.columns])
        for start in range(0, len(rows), 10_000):
            chunk = rows[start : start + 10_000]
            try:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise SchemaMismatch(f"the upstream's rows do not fit the schema ({exc})") from exc


def _rows(body: bytes, *, lines: bool) -> list[dict[str, Any]]:
    try:
        if lines:
            parsed: Any = [json.loads(line) for line in body.splitlines() if line.strip()]
        else:
            parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceRejected("the upstream did not answer JSON") from exc
    except RecursionError as exc:
        raise SourceRejected("the upstream's JSON is nested too deeply") from exc
    if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
        raise SchemaMismatch("the upstream did not answer a list of objects")
    return parsed
