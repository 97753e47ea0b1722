"""The server certificate is re-read when its mounted files change (issue 13).

A real gateway on loopback; the certificate and key files are replaced the way the kubelet
updates a Secret volume (new files, swapped in). New handshakes then present the new
certificate; a pair that does not match is refused and the old one kept. The CRL's own
reload on change is tested with the trust material (tests/gateway/test_trust*.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from certs import issue_server
from gateway.server import GatewayServer, gateway_server
from gateway.settings import SettingsError
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import NOW, Pki, pem, write_key
from tests.support.server import gateway_settings, serving


@dataclass
class Running:
    server: GatewayServer
    port: int
    pki: Pki


async def _migrate(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await db.dispose()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    pki = Pki(tmp_path / "pki")
    with database_url("sqlite", tmp_path) as url:
        asyncio.run(_migrate(url))
        with serving(gateway_settings(pki, tmp_path, url)) as served:
            yield Running(served.server, served.port, pki)


def _served(run: Running) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(run.pki.bundle))
    with (
        socket.create_connection(("127.0.0.1", run.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _new_pair(pki: Pki, directory: Path) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_server(
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        public_key=key.public_key(),
        issuer=pki.issuing,
        issuer_key=pki.issuing_key,
        now=NOW,
    )
    directory.mkdir()
    cert_path = directory / "server.pem"
    cert_path.write_bytes(pem(cert) + pem(pki.issuing))
    return cert_path, write_key(directory / "server.key", key), cert


def _swap_in(pki: Pki, cert: Path, key: Path) -> None:
    """Replace the files by rename, as the kubelet's atomic writer swaps a volume's data."""
    cert.replace(pki.server_cert)
    key.replace(pki.server_key)


def _reload_on_the_loop(run: Running) -> bool:
    """The check the server's tick makes, run on the server's own loop thread."""
    done = asyncio.run_coroutine_threadsafe(_check(run.server), _loop_of(run.server))
    return done.result(timeout=10)


async def _check(server: GatewayServer) -> bool:
    return server.reload_certificate()


def _loop_of(server: GatewayServer) -> asyncio.AbstractEventLoop:
    return server.servers[0].get_loop()


def test_changed_certificate_is_served_to_new_handshakes(running: Running, tmp_path: Path) -> None:
    old = _served(running)
    assert not _reload_on_the_loop(running)  # unchanged: nothing to do
    cert, key, new = _new_pair(running.pki, tmp_path / "rotated")
    _swap_in(running.pki, cert, key)
    assert _reload_on_the_loop(running)
    served = _served(running)
    assert served == new
    assert served.serial_number != old.serial_number


def test_mismatched_pair_keeps_the_old_certificate(running: Running, tmp_path: Path) -> None:
    old = _served(running)
    cert, _key, _new = _new_pair(running.pki, tmp_path / "half")
    cert.replace(running.pki.server_cert)  # the certificate without its key
    assert not _reload_on_the_loop(running)
    assert _served(running) == old


def test_the_server_looks_by_itself(running: Running, tmp_path: Path) -> None:
    cert, key, new = _new_pair(running.pki, tmp_path / "rotated")
    _swap_in(running.pki, cert, key)
    deadline = time.monotonic() + 30  # a bound on the wait, not an assertion on time
    while _served(running) != new:
        assert time.monotonic() < deadline, "the server never reloaded its certificate"
        time.sleep(0.2)


def test_exposed_key_is_not_loaded(running: Running, tmp_path: Path) -> None:
    old = _served(running)
    cert, key, _new = _new_pair(running.pki, tmp_path / "exposed")
    key.chmod(0o644)
    _swap_in(running.pki, cert, key)
    assert not _reload_on_the_loop(running)
    assert _served(running) == old


def test_exposed_tls_key_refuses_to_start(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.server_key.chmod(0o640)
    settings = gateway_settings(pki, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db'}")
    with pytest.raises(SettingsError, match="is readable by its group"):
        gateway_server(settings)
