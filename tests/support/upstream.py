"""A real JSON upstream on loopback that records every path it is asked for."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: What the upstream answers for a path: the JSON value, and extra response headers.
Answer = Callable[[str], tuple[object, dict[str, str]]]


@dataclass
class Upstream:
    """The running server and the paths of the GETs it has served, in order."""

    server: ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def counting_upstream(answer: Answer) -> Upstream:
    """Start an upstream answering every GET with ``answer(path)``; close it when done."""
    upstream: Upstream

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream.hits.append(self.path)
            value, headers = answer(self.path)
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for name, text in headers.items():
                self.send_header(name, text)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    upstream = Upstream(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=upstream.server.serve_forever, daemon=True).start()
    return upstream
