"""Send the TLS alert when a handshake fails (asyncio drops it: CPython gh-98078).

When OpenSSL refuses a handshake (a client certificate from an unknown CA, an expired one,
a wrong key usage) it writes a fatal alert for the peer into the connection's outgoing
buffer. asyncio's ``SSLProtocol`` then closes the transport without sending that buffer,
so the client sees the connection end with no reason: curl says "Empty reply from server"
(TLS 1.3) or ``SSL_ERROR_SYSCALL`` (TLS 1.2), openssl "unexpected eof". CPython fixed this
upstream (gh-98078: flush the outgoing buffer before the fatal error); the Python versions
Sluis supports do not have the fix yet.

:func:`send_handshake_alerts` gives every TLS connection a loop accepts the same fix: the
protocol's handshake-complete hook first sends what OpenSSL left for the peer, then fails
as before. On a Python with the upstream fix the buffer is already empty and this does
nothing. uvloop (not a dependency; uvicorn would pick it when installed) has its own
protocol, which this does not reach.

Drop this module when the oldest supported Python has the fix.
"""

from __future__ import annotations

import asyncio
import functools
from asyncio import sslproto
from collections.abc import Callable
from typing import Any

_MARK = "_sluis_sends_handshake_alerts"


def send_handshake_alerts(loop: asyncio.AbstractEventLoop) -> bool:
    """Make ``loop``'s TLS connections send the alert of a failed handshake.

    True when the loop is one this applies to (asyncio's own selector loop); calling it
    again on the same loop changes nothing.
    """
    make = getattr(loop, "_make_ssl_transport", None)
    if make is None or getattr(make, _MARK, False):
        return make is not None

    @functools.wraps(make)
    def make_ssl_transport(*args: Any, **kwargs: Any) -> asyncio.Transport:
        transport = make(*args, **kwargs)
        protocol = getattr(transport, "_ssl_protocol", None)
        if isinstance(protocol, sslproto.SSLProtocol):
            _flush_before_failing(protocol)
        return transport  # type: ignore[no-any-return]  # asyncio's private hook is untyped

    setattr(make_ssl_transport, _MARK, True)
    # asyncio builds each accepted TLS connection through this (private) loop method; an
    # attribute on this one loop, so nothing else in the process changes.
    loop._make_ssl_transport = make_ssl_transport  # type: ignore[attr-defined]  # see above
    return True


def _flush_before_failing(protocol: sslproto.SSLProtocol) -> None:
    complete: Callable[[BaseException | None], None] = protocol._on_handshake_complete

    def on_handshake_complete(handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            # What OpenSSL wrote for the peer (the fatal alert) goes out before the close.
            protocol._process_outgoing()  # type: ignore[attr-defined]  # private, not in typeshed
        complete(handshake_exc)

    # This one connection's hook; asyncio's class is left as it is.
    protocol._on_handshake_complete = on_handshake_complete  # type: ignore[method-assign]  # see above
