"""The real gateway on a loopback port, served by uvicorn in a background thread."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.server import GatewayServer, gateway_server
from gateway.settings import Settings
from tests.support.pki import ClientCert, Pki, write_key


def signing_key(directory: Path, name: str = "signing-key.pem") -> Path:
    """A proper (non-dev) Ed25519 key, mode 0600."""
    path = directory / name
    if not path.exists():
        write_key(path, ed25519.Ed25519PrivateKey.generate())
    return path


def gateway_settings(pki: Pki, home: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a gateway on an ephemeral loopback port with ``pki``."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "host": "127.0.0.1",
        "port": 0,
        "tls_cert": pki.server_cert,
        "tls_key": pki.server_key,
        "tls_client_ca": pki.bundle,
        "tls_crl": pki.crl_path,
        "signing_key_file": signing_key(home),
        "audit_key_file": signing_key(home, "audit-key.pem"),
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Served:
    """A started gateway: its server, the thread running it, and its port."""

    server: GatewayServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])


@contextmanager
def serving(settings: Settings, *, stop_within: float = 15, **options: Any) -> Iterator[Served]:
    """Start the gateway in a thread, wait until it listens, yield it; stop it (waiting at
    most ``stop_within`` seconds for the thread)."""
    server = gateway_server(settings, log_level="warning", **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    try:
        yield Served(server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=stop_within)


@contextmanager
def running_gateway(settings: Settings, **options: Any) -> Iterator[str]:
    """Start the gateway; yield its base URL; stop it."""
    with serving(settings, **options) as served:
        scheme = "http" if settings.plain_http else "https"
        yield f"{scheme}://127.0.0.1:{served.port}"


def client_context(pki: Pki, client: ClientCert | None) -> ssl.SSLContext:
    """A client TLS context trusting the test PKI, presenting ``client`` if given."""
    context = ssl.create_default_context(cafile=str(pki.bundle))
    if client is not None:
        context.load_cert_chain(client.cert_path, client.key_path)
    return context


def https(pki: Pki, client: ClientCert | None, base_url: str) -> httpx.Client:
    """An httpx client for the gateway, with a client certificate or without."""
    return httpx.Client(base_url=base_url, verify=client_context(pki, client), timeout=10)
