"""A consumer connector's callback endpoint on loopback: real TLS, records what arrives.

Every POST is answered 200 and queued as (path, JSON body); ``fail_next(n)`` answers the next
``n`` POSTs 503 first (they are not queued), to see the provider retry.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class CallbackServer:
    """What the consumer's callback endpoint received."""

    url: str
    received: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    failures: list[int] = field(default_factory=lambda: [0])
    refused: list[str] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)  # the client certificate's common name

    def fail_next(self, n: int) -> None:
        """Answer the next ``n`` POSTs with 503."""
        self.failures[0] = n

    def next(self, timeout: float = 20) -> tuple[str, Any]:
        """The next message that arrived (path, body); queue.Empty after ``timeout``."""
        return self.received.get(timeout=timeout)


def _handler(server: CallbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if server.failures[0] > 0:
                server.failures[0] -= 1
                server.refused.append(self.path)
                self.send_response(503)
            else:
                peer = self.connection.getpeercert()  # type: ignore[attr-defined]  # an SSLSocket
                server.callers.append(dict(x[0] for x in peer["subject"])["commonName"])
                server.received.put((self.path, json.loads(body)))
                self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the queue."""

    return Handler


@contextmanager
def callback_server(cert: Path, key: Path, client_ca: Path) -> Iterator[CallbackServer]:
    """Serve on 127.0.0.1 with ``cert``/``key``, requiring a client certificate that chains
    to ``client_ca`` (the provider must say who calls); the base URL is ``.url``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state = CallbackServer(f"https://127.0.0.1:{httpd.server_address[1]}/callback/")
    httpd.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
