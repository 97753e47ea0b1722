"""What one oversized request header costs the server, with the head cap and without it.

One ``X-Big`` header of each size is sent to ``/healthz`` over TLS without a client
certificate (what ``tls_client_auth: optional`` allows anyone), on a fresh connection, to a
``sluis serve`` child process. "capped" is the default (32 KiB heads); "uncapped" raises
the head limits to 1 GiB, which leaves the parser to accumulate the header as before the
cap. The table gives the answer, the time until it, and the server's resident memory
(VmRSS) after the request and its peak (VmHWM), from /proc (Linux only).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

import certs
from gateway.background import SLUIS, free_port
from gateway.settings import ensure_dev_signing_key

SIZES_MIB = (0.0625, 1, 16, 64)
UNCAPPED = {
    "SLUIS_HTTP_MAX_REQUEST_LINE": str(1 << 30),
    "SLUIS_HTTP_MAX_HEADER_BYTES": str(1 << 30),
    "SLUIS_HTTP_HEADER_TIMEOUT": "600",
}


def _env(home: Path) -> tuple[dict[str, str], Path]:
    ca = certs.CADirectory.init(
        home / "pki", name="Bench", key_type="ec-p256", now=datetime.now(UTC)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env.update({
        "SLUIS_HOME": str(home),
        "SLUIS_TLS_CERT": str(ca.server_cert_path), "SLUIS_TLS_KEY": str(ca.server_key_path),
        "SLUIS_TLS_CLIENT_CA": str(ca.trust_bundle_path), "SLUIS_TLS_CRL": str(ca.crl_path),
        "SLUIS_SIGNING_KEY_FILE": str(ensure_dev_signing_key(home / "dev")),
    })  # fmt: skip
    return env, ca.trust_bundle_path


@contextmanager
def _server(env: dict[str, str], trust: Path) -> Iterator[tuple[int, int]]:
    """``sluis serve`` as a child; yields (port, pid)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [SLUIS, "serve", "--insecure-dev", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(trust))
    try:
        for _ in range(300):
            try:
                httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def _memory_mib(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _send(port: int, trust: Path, size: int) -> tuple[str, float]:
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: "
    request = head + b"a" * size + b"\r\n\r\n"
    context = ssl.create_default_context(cafile=str(trust))
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as raw:
        sock = context.wrap_socket(raw, server_hostname="localhost")
        with contextlib.suppress(OSError):  # refused before we finished sending
            sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
    return status.removeprefix("HTTP/1.1 ").split(" ", 1)[0], time.perf_counter() - started


def main() -> None:
    """Run the cases and print the table."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
        env, trust = _env(Path(tmp))
        for mode, extra in (("capped", {}), ("uncapped", UNCAPPED)):
            with _server({**env, **extra}, trust) as (port, pid):
                for mib in SIZES_MIB:
                    before, _ = _memory_mib(pid)
                    status, seconds = _send(port, trust, int(mib * (1 << 20)))
                    after, peak = _memory_mib(pid)
                    size = f"{mib * 1024:.0f} KiB" if mib < 1 else f"{mib:.0f} MiB"
                    rows.append(
                        (
                            mode,
                            size,
                            status,
                            f"{seconds:.2f}",
                            f"{after - before:+.1f}",
                            f"{peak:.0f}",
                        )
                    )
    table = Table(title="One X-Big header to /healthz over TLS, fresh connection")
    for column in ("limits", "header", "answer", "seconds", "RSS change MiB", "peak RSS MiB"):
        table.add_column(column, justify="left" if column in {"limits", "answer"} else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
