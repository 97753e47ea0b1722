"""A real HTTP server on 127.0.0.1 that behaves well, slowly, or lies, for the HTTP tests."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROWS = [{"id": i, "name": f"n{i}", "secret": "x"} for i in range(25)]
HITS: Counter[str] = Counter()
SEEN: list[tuple[str, str, bytes]] = []  # (method, path, body) of every GET and POST
NESTED = {
    "order": 7,
    "machine": {"model": "X200", "customer": "X"},
    "lines": [{"qty": 2, "customer": "Y"}, {"qty": 3, "customer": "Z"}],
    "data": [{"order": 8, "customer": "W"}],
}


@cache
def dense_bomb() -> bytes:
    """60 MiB of JSON (an array of spaces), gzip-compressed to about 60 KB."""
    return gzip.compress(b"[" + b" " * (60 << 20) + b"]", compresslevel=9, mtime=0)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args

    def do_GET(self) -> None:
        HITS[self.path] += 1
        SEEN.append(("GET", self.path, b""))
        route = getattr(self, "_" + self.path.strip("/").replace("/", "_").replace("-", "_"), None)
        if route is None:
            self._send(404, b'{"error": "not found"}')
        else:
            route()

    def do_POST(self) -> None:
        HITS["POST " + self.path] += 1
        SEEN.append(("POST", self.path, self._body()))
        if self.path == "/slow":
            self._slow()
        elif self.path == "/see-other":
            self._send(303, b"", Location="/method")
        elif self.path == "/temporary":
            self._send(307, b"", Location="/method")
        elif self.path == "/method":
            self._send(200, json.dumps({"method": "POST"}).encode())
        elif self.path == "/echo-type":
            self._send(200, json.dumps({"type": self.headers.get("content-type")}).encode())
        else:
            self._send(201, b'{"id": 1, "secret": "s"}')

    def do_PUT(self) -> None:
        HITS["PUT " + self.path] += 1
        self._slow()

    def do_DELETE(self) -> None:
        HITS["DELETE " + self.path] += 1
        self._slow()

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(
        self, status: int, body: bytes, kind: str = "application/json", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _rows(self) -> None:
        self._send(200, json.dumps(ROWS).encode())

    def _lines(self) -> None:
        self._send(200, "".join(json.dumps(r) + "\n" for r in ROWS).encode(), "application/jsonl")

    def _slow(self) -> None:
        time.sleep(1.5)
        self._send(200, b"[]")

    def _liar(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b'[{"id": 1}')
        self.wfile.flush()
        self.close_connection = True

    def _garbage(self) -> None:
        self._send(200, b"<html>surprise</html>", "text/html")

    def _wrong_types(self) -> None:
        self._send(200, b'[{"id": "not a number", "name": 3}]')

    def _big(self) -> None:
        self._send(200, b"[" + b" " * 300_000 + b"]")

    def _error(self) -> None:
        self._send(500, b'{"error": "boom"}')

    def _redirect_out(self) -> None:
        self._send(302, b"", Location="http://example.com/rows")

    def _redirect_in(self) -> None:
        self._send(302, b"", Location="/rows")

    def _orders(self) -> None:
        self._send(200, b'[{"id": 1, "name": "n1", "customer": "listing"}]')

    def _nested(self) -> None:
        self._send(200, json.dumps(NESTED).encode())

    def _deep(self) -> None:
        self._send(200, b"[" * 100_000 + b"]" * 100_000)

    def _method(self) -> None:
        self._send(200, json.dumps({"method": "GET"}).encode())

    def _set_cookie(self) -> None:
        self._send(200, b'{"id": 1}', Set_Cookie="session=consumer-a; Path=/")

    def _echo_cookie(self) -> None:
        self._send(200, json.dumps({"id": self.headers.get("cookie")}).encode())

    def _orders_8(self) -> None:
        self._send(302, b"", Location="/secret")

    def _secret(self) -> None:
        self._send(200, b'{"id": "secret"}')

    def _orders_7(self) -> None:
        self._send(200, b'{"id": 7, "name": "n7", "secret": "x", "nested": {"secret": 1}}')

    def _gzip_rows(self) -> None:
        self._send(200, gzip.compress(json.dumps(ROWS).encode()), Content_Encoding="gzip")

    def _bomb(self) -> None:  # 10 MB of JSON in about 10 KB on the wire
        body = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
        self._send(200, body, Content_Encoding="gzip")

    def _dense_bomb(self) -> None:  # 60 MiB of JSON in about 60 KB: one or two network reads
        self._send(200, dense_bomb(), Content_Encoding="gzip")

    def _deflate_rows(self) -> None:
        self._send(200, zlib.compress(json.dumps(ROWS).encode()), Content_Encoding="deflate")

    def _raw_deflate_rows(self) -> None:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = packer.compress(json.dumps(ROWS).encode()) + packer.flush()
        self._send(200, body, Content_Encoding="deflate")

    def _twice_rows(self) -> None:  # gzip applied first, then deflate
        body = zlib.compress(gzip.compress(json.dumps(ROWS).encode()))
        self._send(200, body, Content_Encoding="gzip, deflate")

    def _trailing_gzip(self) -> None:  # bytes after the gzip stream (httpx ignores them too)
        body = gzip.compress(json.dumps(ROWS).encode()) + b"trailing"
        self._send(200, body, Content_Encoding="gzip")

    def _corrupt_gzip(self) -> None:
        self._send(
            200, gzip.compress(json.dumps(ROWS).encode())[:20] + b"x" * 50, Content_Encoding="gzip"
        )

    def _brotli(self) -> None:
        self._send(200, b"\x0b\x02\x80[]\x03", Content_Encoding="br")

    def _huge(self) -> None:  # HUGE_ROWS rows, about 60 MB, written as they are made
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"[")
        for start in range(0, HUGE_ROWS, 10_000):
            rows = (HUGE_ROW % (i, i) for i in range(start, min(start + 10_000, HUGE_ROWS)))
            self.wfile.write((b"," if start else b"") + b",".join(rows))
        self.wfile.write(b"]")
        self.close_connection = True

    def _deep_field(self) -> None:
        nested = b"[" * 100_000 + b"]" * 100_000
        self._send(200, b'[{"id": 1, "name": "a", "meta": ' + nested + b"}]")

    def _teapot(self) -> None:
        self._send(418, b"upstream says: internal-host-42 is down", "text/plain")


HUGE_ROWS = 500_000
HUGE_ROW = b'{"id": %d, "name": "row %d", "padding": "' + b"p" * 64 + b'"}'


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        del request, client_address  # clients that hang up on purpose (timeouts, caps)


@contextmanager
def upstream() -> Iterator[str]:
    """The base URL of a fresh server bound to 127.0.0.1 only."""
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
