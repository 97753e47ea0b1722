"""``sluis serve`` as a child process, for the demo and the benchmarks."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

SLUIS = str(Path(sys.executable).with_name("sluis"))


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(
    env: dict[str, str],
    port: int,
    trust_bundle: Path,
    *,
    log: IO[bytes] | int = subprocess.DEVNULL,
    timeout: float = 30,
) -> Iterator[str]:
    """Start ``sluis serve --insecure-dev`` with ``env``; yield its URL once /healthz answers."""
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [SLUIS, "serve", "--insecure-dev", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(trust_bundle))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{url}/healthz", verify=context, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
