"""Send the TLS alert when a handshake fails (asyncio drops it: CPython gh-98078).

When OpenSSL refuses a handshake (a client certificate from an unknown CA, an expired one,
a wrong key usage) it writes a fatal alert for the peer into the connection's outgoing
buffer. asyncio's ``SSLProtocol`` then closes the transport without sending that buffer,
so the client sees the connection end with no reason: curl says "Empty reply from server"
(TLS 1.3) or ``SSL_ERROR_SYSCALL`` (TLS 1.2), openssl "unexpected eof". CPython fixed this
upstream (gh-98078: flush the outgoing buffer before the fatal error); the Python versions
Sluis supports do not have the fix yet.

:func:`start_tls` is ``loop.start_tls`` for the server side with the fix: the protocol's
handshake-complete hook first sends what OpenSSL left for the peer, then fails as before.
Every TLS connection the gateway accepts is upgraded with it (``gateway/http/tls_accept.py``).
On a Python with the upstream fix the buffer is already empty and this does nothing. uvloop
(not a dependency; uvicorn would pick it when installed) has its own protocol, which this
does not reach.

Drop this module when the oldest supported Python has the fix.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections.abc import Callable


def _flush_before_failing(protocol: sslproto.SSLProtocol) -> None:
    complete: Callable[[BaseException | None], None] = protocol._on_handshake_complete

    def on_handshake_complete(handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            # What OpenSSL wrote for the peer (the fatal alert) goes out before the close.
            protocol._process_outgoing()  # type: ignore[attr-defined]  # private, not in typeshed
        complete(handshake_exc)

    # This one connection's hook; asyncio's class is left as it is.
    protocol._on_handshake_complete = on_handshake_complete  # type: ignore[method-assign]  # see above


async def start_tls(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    *,
    handshake_timeout: float,
    close_timeout: float,
) -> asyncio.Transport:
    """``loop.start_tls(transport, protocol, context, server_side=True)``, whose failed
    handshake sends OpenSSL's alert before the connection closes.

    asyncio's ``start_tls`` builds its ``SSLProtocol`` inside the call, out of reach of the
    hook above; this is the same few steps (Python 3.11's ``BaseEventLoop.start_tls``) with
    the hook put on the protocol. On failure the transport is closed, not aborted, so the
    alert already written goes out first. ``close_timeout`` bounds how long a close waits for
    the peer's close_notify (asyncio's default is 30 s: an idle client that never reads held
    every closed connection, and a server's stop, that long).
    """
    waiter = loop.create_future()
    tls = sslproto.SSLProtocol(
        loop,
        protocol,
        context,
        waiter,
        server_side=True,
        ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]  # asyncio takes any number of seconds; typeshed says int
        ssl_shutdown_timeout=close_timeout,
        call_connection_made=False,
    )
    _flush_before_failing(tls)
    transport.pause_reading()  # connection_made first, then the ClientHello
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resume = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resume.cancel()
        raise
    return tls._app_transport  # asyncio's own (private) attribute, as its start_tls returns
