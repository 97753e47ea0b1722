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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
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
from connectors.http_decode import CorruptBody, Decoder, decoder
from connectors.http_guard import check_base_url, parse_networks, resolve
from connectors.http_rows import ArrayRows, LineRows, Row
from connectors.plan import NONE, Pushdown
from connectors.query import Query

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT = SAFE | {"PUT", "DELETE"}
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The content codings asked for and read (connectors/http_decode.py): decoded in steps of at
# most 64 KiB, each counted against the cap before the next, so a bomb stops at the cap.
ACCEPT_ENCODING = "gzip, deflate"
BATCH_ROWS = 10_000  # tabular mode: rows per Arrow batch at most
FEED_BYTES = 1024 * 1024  # tabular mode: bytes parsed between checks for a full batch
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


class Opened:
    """An upstream response whose body is read as it arrives: decoded, within the caps.

    The cap counts decoded bytes (so a compression bomb is refused) and the bytes on the
    wire; waiting on the upstream for the body may take ``3 * timeout`` in all.
    """

    def __init__(self, response: httpx.Response, config: HttpConfig, decoder: Decoder) -> None:
        self._response = response
        self._decoder = decoder
        self._cap = config.max_bytes
        self._wait = config.timeout * 3
        self.status = response.status_code
        self.headers = response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The decoded body, chunk by chunk; ``SourceRejected`` past the cap."""
        decoded, body = 0, self._response.aiter_raw()
        raw: bytes | None = b""
        while raw is not None:
            raw = await self._next(body)
            for chunk in self._decoded(raw):
                decoded += len(chunk)
                if max(decoded, self._response.num_bytes_downloaded) > self._cap:
                    raise _too_large(self._cap)
                yield chunk

    def _decoded(self, raw: bytes | None) -> Iterator[bytes]:
        """``raw``'s decoded pieces (the decoder's remainder when ``raw`` is None)."""
        try:
            yield from self._decoder.end() if raw is None else self._decoder.feed(raw)
        except CorruptBody as exc:
            raise SourceRejected("the upstream's compressed answer is corrupt") from exc

    async def read(self) -> bytes:
        """The whole decoded body (at most the cap)."""
        return b"".join([chunk async for chunk in self.chunks()])

    async def _next(self, body: AsyncIterator[bytes]) -> bytes | None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with _mapped():
            async with asyncio.timeout(max(self._wait, 0.0)):
                chunk = await anext(body, None)
        self._wait -= loop.time() - began
        return chunk


@contextmanager
def _mapped() -> Iterator[None]:
    """httpx's and asyncio's failures as the connector errors they mean."""
    try:
        yield
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise SourceTimeout("the upstream was too slow") from exc
    except httpx.ConnectError as exc:
        raise SourceUnavailable("cannot connect to the upstream") from exc
    except httpx.HTTPError as exc:
        raise SourceRejected(f"the upstream broke the protocol ({type(exc).__name__})") from exc


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
        content_type: str | None = None,
        params: Any = None,
        check: PathCheck | None = None,
    ) -> Fetched:
        """``open`` and read the whole (capped) body."""
        async with self.open(
            method, path, body=body, content_type=content_type, params=params, check=check
        ) as opened:
            return Fetched(opened.status, opened.headers, await opened.read())

    @asynccontextmanager
    async def open(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        params: Any = None,
        check: PathCheck | None = None,
    ) -> AsyncIterator[Opened]:
        """``method path`` against the configured origin, retried where HTTP allows it.

        ``path`` is sent exactly as given; ``check`` vets every redirect's target too. The
        response is closed when the block ends, read or not.
        """
        url = self._origin.copy_with(raw_path=path.encode("ascii", "replace"))
        if url.raw_path != path.encode():
            raise TargetRefused("the path would not be sent as given")
        sent = _Sent(body, content_type)
        for attempt in range(1 + self._config.retries):
            try:
                response = await self._follow(method, url, sent, params, check)
                break
            except (SourceUnavailable, SourceTimeout) as exc:
                if attempt == self._config.retries or not _retryable(method, exc):
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        try:
            decoding = decoder(response.headers.get("content-encoding"))
            if decoding is None:
                raise SourceRejected(
                    "the upstream answered in a content coding the gateway does not read"
                )
            yield Opened(response, self._config, decoding)
        finally:
            await response.aclose()

    async def _follow(
        self, method: str, url: httpx.URL, sent: _Sent, params: Any, check: PathCheck | None
    ) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._once(method, url, sent, params)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or location is None:
                return response
            await response.aclose()  # a redirect's body is never read
            url = self._same_origin(url.join(location))
            method, sent = _redirected(method, response.status_code, sent)
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

    async def _once(self, method: str, url: httpx.URL, sent: _Sent, params: Any) -> httpx.Response:
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await resolve(url.host, port, self._allowed)
        pinned = url.copy_with(host=str(address))
        headers = (
            dict(self._config.headers)
            | sent.headers()
            | {
                "host": url.netloc.decode("ascii"),
                "accept-encoding": ACCEPT_ENCODING,
            }
        )
        request = self._client.build_request(
            method, pinned, content=sent.body, params=params, headers=headers
        )
        request.extensions["sni_hostname"] = url.host
        with _mapped():
            async with asyncio.timeout(self._config.timeout * 3):
                response = await self._client.send(request, stream=True)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._config.max_bytes:
            await response.aclose()
            raise _too_large(self._config.max_bytes)
        return response


@dataclass(frozen=True)
class _Sent:
    """The request body and its media type (the consumer's ``Content-Type``)."""

    body: bytes | None
    content_type: str | None = None

    def headers(self) -> dict[str, str]:
        """The ``Content-Type`` to send with the body, if there is one."""
        if self.body is None or not self.content_type:
            return {}
        return {"content-type": self.content_type}


def _too_large(cap: int) -> SourceRejected:
    return SourceRejected(f"the upstream answer is larger than the cap ({cap} bytes)")


def _retryable(method: str, exc: Exception) -> bool:
    """Timeouts (the upstream may have acted) for safe methods; no connection for idempotent."""
    return method in (SAFE if isinstance(exc, SourceTimeout) else IDEMPOTENT)


def _redirected(method: str, status: int, sent: _Sent) -> tuple[str, _Sent]:
    """The method and body a redirect asks for (RFC 9110 section 15.4)."""
    if status == 303 and method != "HEAD":  # noqa: PLR2004 (See Other)
        return "GET", _Sent(None)
    if status in (301, 302) and method == "POST":
        return "GET", _Sent(None)
    return method, sent


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
        schema = pa.schema([self._declared.field(c) for c in query.columns])
        parser = LineRows() if self._config.lines else ArrayRows()
        async with self._fetcher.open("GET", self._config.path) as opened:
            if opened.status != 200:  # noqa: PLR2004 (HTTP OK)
                raise SourceRejected(f"the upstream answered {opened.status}")
            rows: list[Row] = []
            async for chunk in opened.chunks():
                for start in range(0, len(chunk), FEED_BYTES):
                    rows += parser.feed(chunk[start : start + FEED_BYTES])
                    while len(rows) >= BATCH_ROWS:
                        yield _batch(rows[:BATCH_ROWS], schema)
                        rows = rows[BATCH_ROWS:]
            rows += parser.close()
            if rows:
                yield _batch(rows, schema)


def _batch(rows: list[Row], schema: pa.Schema) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatch(f"the upstream's rows do not fit the schema ({exc})") from exc
