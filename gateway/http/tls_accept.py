"""TLS connections counted against the connection limits from the moment they are accepted.

asyncio's TLS server (``create_server(ssl=...)``) makes the HTTP protocol only once the
handshake is done, so connections still in their handshake were bounded by nothing but the
handshake timeout: a client could hold thousands of half-open handshakes, each with its
buffers, whatever ``http_max_connections`` said. Here the listener is plain TCP and every
accepted connection goes through :class:`Handshake`: it is counted at once (in total and per
peer address, :meth:`ConnectionCounter.accept`), then upgraded in place with
``loop.start_tls`` (asyncio's own TLS protocol, the same handshake timeout; through
``tls_alert.start_tls``, so a refused handshake still sends its alert) and handed to the
HTTP protocol with its verdict, whose guard stops counting it when it closes.

A connection over a cap still completes its handshake to be told 503 (so a client learns
why), but at most ``MAX_REFUSING`` such handshakes run at once; beyond that it is closed at
once, before any TLS work. A handshake that fails or times out stops being counted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from gateway.http.connection_limits import Admission, ConnectionCounter
from gateway.http.tls_alert import start_tls

log = logging.getLogger("sluis.http.guard")


class Handshake(asyncio.Protocol):
    """One accepted TCP connection until its TLS handshake is done, then the HTTP protocol's."""

    def __init__(
        self,
        make_http: Callable[[], Any],
        context: ssl.SSLContext,
        timeout: float,
        counter: ConnectionCounter,
        *,
        close_timeout: float,
    ) -> None:
        self._make_http = make_http
        self._context = context
        self._timeout = timeout
        self._close_timeout = close_timeout
        self._counter = counter
        self._early: list[bytes] = []  # decrypted bytes that came before the hand-over
        self._eof = False
        self._lost: tuple[Exception | None] | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream socket's  # noqa: S101
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) else None
        admission = self._counter.accept(source)
        if admission is Admission.DROPPED:
            log.warning("connection from %s closed before TLS: too many connections", source)
            transport.abort()
            return
        transport.pause_reading()  # the ClientHello is start_tls's to read
        self._task = asyncio.get_running_loop().create_task(
            self._upgrade(transport, source, admission)
        )

    async def _upgrade(
        self, raw: asyncio.Transport, source: str | None, admission: Admission
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await start_tls(
                loop,
                raw,
                self,
                self._context,
                handshake_timeout=self._timeout,
                close_timeout=self._close_timeout,
            )
        except asyncio.CancelledError:  # the server is shutting down
            self._counter.forget(admission, source)
            raw.abort()
            raise
        except ssl.SSLError as exc:  # refused: closed, its alert sent first (tls_alert.py)
            log.debug("TLS handshake with %s failed: %s", source, exc)
            self._counter.forget(admission, source)
            return
        except OSError as exc:  # reset or timed out (asyncio's)
            log.debug("TLS handshake with %s failed: %s", source, exc)
            self._counter.forget(admission, source)
            raw.abort()
            return
        if tls is None:  # the connection went away as the handshake ended
            self._counter.forget(admission, source)
            return
        self._hand_over(tls, admission)

    def _hand_over(self, tls: asyncio.Transport, admission: Admission) -> None:
        http = self._make_http()
        http.admission = admission  # its guard counts the connection from here on
        tls.set_protocol(http)
        http.connection_made(tls)
        for data in self._early:
            http.data_received(data)
        self._early.clear()
        if self._eof:
            http.eof_received()
        if self._lost is not None:
            http.connection_lost(self._lost[0])

    # Between the handshake's end and the hand-over (one turn of the loop), asyncio's TLS
    # protocol delivers to this one: keep it for the HTTP protocol.
    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)


def handshaking(
    make_http: Callable[[], Any],
    context: ssl.SSLContext,
    timeout: float,
    counter: ConnectionCounter,
    *,
    close_timeout: float,
) -> Callable[[], Handshake]:
    """A protocol factory for a plain TCP listener that does TLS as :class:`Handshake` says;
    ``make_http`` is uvicorn's protocol factory, ``counter`` its protocol class's;
    ``timeout`` bounds the handshake and ``close_timeout`` a close's wait for close_notify."""
    return lambda: Handshake(make_http, context, timeout, counter, close_timeout=close_timeout)
