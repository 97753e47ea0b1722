"""The ASGI TLS extension, read from a real TLS connection (a handshake in memory, both ends
with ``ssl``), and its scope shim on its own. Over sockets, on both parsers: test_tls_modes.py.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from gateway.http.tls_scope import _TLSScopeApp, tls_extension
from tests.support.pki import ClientCert, Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(Path(tmp_path_factory.mktemp("tls-scope")) / "pki")


@pytest.fixture(scope="module")
def university(pki: Pki) -> ClientCert:
    return pki.client("TU Delft", "NTRNL-41000000")


def _handshake(
    pki: Pki, client: ClientCert | None, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
) -> ssl.SSLObject:
    """The server end of a TLS connection made in memory; the client presents ``client``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    server_context.load_verify_locations(cafile=str(pki.bundle))
    server_context.verify_mode = ssl.CERT_OPTIONAL
    server_context.maximum_version = version
    client_context = ssl.create_default_context(cafile=str(pki.bundle))
    client_context.maximum_version = version
    if client is not None:
        client_context.load_cert_chain(client.cert_path, client.key_path)
    pipes = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]
    server = server_context.wrap_bio(pipes[0][0], pipes[1][1], server_side=True)
    client_end = client_context.wrap_bio(pipes[1][0], pipes[0][1], server_hostname="localhost")
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, end in (("client", client_end), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[0][0].write(pipes[0][1].read())  # client's bytes to the server
        pipes[1][0].write(pipes[1][1].read())  # server's bytes to the client
        if all(done.values()):
            return server
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize(
    ("version", "number"), [(ssl.TLSVersion.TLSv1_3, 0x0304), (ssl.TLSVersion.TLSv1_2, 0x0303)]
)
def test_the_extension_holds_the_leaf_and_the_version(
    pki: Pki, university: ClientCert, version: ssl.TLSVersion, number: int
) -> None:
    extension = tls_extension(_handshake(pki, university, version))
    (leaf,) = extension["client_cert_chain"]
    assert x509.load_pem_x509_certificate(leaf.encode()) == university.cert
    assert extension == {
        "server_cert": None,
        "client_cert_chain": [leaf],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": number,
        "cipher_suite": None,
    }


def test_without_a_client_certificate_the_chain_is_empty(pki: Pki) -> None:
    extension = tls_extension(_handshake(pki, None))
    assert extension["client_cert_chain"] == []
    assert extension["tls_version"] == 0x0304


class Recorder:
    """The app behind the shim: keeps its scope, reads one message, sends one."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.received: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.received.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})


def _through(app: Recorder, tls: dict[str, Any], scope: dict[str, Any]) -> None:
    """Run ``app`` behind the shim; its messages go through unchanged."""
    sent: list[Any] = []

    async def request() -> Any:
        return {"type": "http.request", "body": b"hello"}

    async def keep(message: Any) -> None:
        sent.append(message)

    asyncio.run(_TLSScopeApp(app, tls)(scope, request, keep))
    assert app.received == [{"type": "http.request", "body": b"hello"}]
    assert sent == [{"type": "http.response.start", "status": 204, "headers": []}]


def test_the_shim_adds_the_extension_and_keeps_the_others() -> None:
    app = Recorder()
    tls = {"client_cert_chain": ["x"]}
    others = {"http.response.trailers": {}}
    scope = {"type": "http", "extensions": others}
    _through(app, tls, scope)
    (seen,) = app.scopes
    assert seen["extensions"] == {"http.response.trailers": {}, "tls": tls}
    assert seen["extensions"]["tls"] is tls  # the connection's own dict (parsed once there)
    assert others == {"http.response.trailers": {}}  # the server's dict is not changed


@pytest.mark.parametrize("extensions", [None, "absent"])
def test_the_shim_makes_the_extensions_when_there_are_none(extensions: Any) -> None:
    app = Recorder()
    scope: dict[str, Any] = {"type": "http"}
    if extensions != "absent":
        scope["extensions"] = extensions
    _through(app, {"a": 1}, scope)
    assert app.scopes[0]["extensions"] == {"tls": {"a": 1}}
