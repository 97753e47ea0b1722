"""Client-certificate modes of the TLS listener, and the ASGI TLS shim on both HTTP parsers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import types
from pathlib import Path

import pytest
import uvicorn

from gateway.http.tls_scope import TLSH11Protocol, TLSHttpToolsProtocol
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.server import build_ssl_context, gateway_server, uvicorn_config
from gateway.settings import SettingsError
from gateway.storage.db import Database
from tests.gateway.test_mtls import HANDSHAKE_REFUSED
from tests.support.pki import NOW, ClientCert, Pki
from tests.support.server import gateway_settings, https, running_gateway

UNIVERSITY = "NTRNL-41000000"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("modes") / "pki")


@pytest.fixture(scope="module")
def university(pki: Pki) -> ClientCert:
    return pki.client("TU Delft", UNIVERSITY)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("modes-home")

    async def register() -> None:
        db = Database(f"sqlite+aiosqlite:///{path / 'sluis.db'}")
        await db.upgrade()
        data = ParticipantCreate(id=UNIVERSITY, name="TU Delft", roles=["consumer"])
        await ParticipantService(db).create(data, now=NOW)
        await db.dispose()

    asyncio.run(register())
    return path


def _url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'sluis.db'}"


def test_required_mode_refuses_the_handshake_without_certificate(
    pki: Pki, university: ClientCert, home: Path
) -> None:
    settings = gateway_settings(pki, home, _url(home), tls_client_auth="required")
    with running_gateway(settings) as base:
        with https(pki, None, base) as client, pytest.raises(HANDSHAKE_REFUSED):
            client.get("/healthz")
        with https(pki, university, base) as client:
            assert client.get("/v1/whoami").json()["participant"]["id"] == UNIVERSITY


@pytest.mark.parametrize("protocol", [TLSHttpToolsProtocol, TLSH11Protocol])
def test_tls_extension_reaches_the_app_with_either_parser(
    pki: Pki, university: ClientCert, home: Path, protocol: type
) -> None:
    settings = gateway_settings(pki, home, _url(home))
    with running_gateway(settings, http=protocol) as base, https(pki, university, base) as client:
        body = client.get("/v1/whoami").json()
    assert body["certificate"]["thumbprint_sha256"]
    assert body["certificate"]["source"] == "tls"


def test_the_server_speaks_tls_1_2_at_least(pki: Pki, home: Path) -> None:
    context = build_ssl_context(gateway_settings(pki, home, _url(home)))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_OPTIONAL


def test_missing_tls_material_refuses_to_start(pki: Pki, home: Path) -> None:
    settings = gateway_settings(pki, home, _url(home), tls_key=home / "missing.key")
    with pytest.raises(SettingsError, match="TLS material cannot be loaded"):
        uvicorn_config(settings)
    no_ca = gateway_settings(pki, home, _url(home), tls_client_ca=None)
    with pytest.raises(SettingsError, match="no client CA bundle"):
        uvicorn_config(no_ca)
    no_crl = gateway_settings(pki, home, _url(home), tls_crl=None)
    with pytest.raises(SettingsError, match="no CRL"):
        uvicorn_config(no_crl)


def test_uvicorn_proxy_header_rewriting_is_off(pki: Pki, home: Path) -> None:
    config: uvicorn.Config = uvicorn_config(gateway_settings(pki, home, _url(home)))
    assert config.proxy_headers is False


def test_the_event_loop_is_asyncios_even_where_uvloop_is_installed(
    pki: Pki, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The TLS accept path (gateway/http/tls_accept.py, tls_alert.py) works on asyncio's own
    # transports and SSL protocol; uvicorn's default picks uvloop whenever it can import it
    # (`uvicorn[standard]` brings it), and every handshake then failed on an assertion.
    fake = types.ModuleType("uvloop")
    fake.new_event_loop = lambda: pytest.fail("uvloop's loop was chosen")  # type: ignore[attr-defined]
    fake.Loop = asyncio.SelectorEventLoop  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    config: uvicorn.Config = uvicorn_config(gateway_settings(pki, home, _url(home)))
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop) is asyncio.SelectorEventLoop
    finally:
        loop.close()


def test_no_websocket_protocol_takes_a_connection_over(pki: Pki, home: Path) -> None:
    # Sluis serves no WebSocket; with `websockets` or `wsproto` importable, uvicorn's "auto"
    # would hand an upgraded connection to a protocol outside the front door's guard.
    settings = gateway_settings(pki, home, _url(home), health_port=0, health_host="127.0.0.1")
    server = gateway_server(settings)
    assert server.health is not None
    for config in (server.config, server.health.config):
        assert config.ws == "none"
        config.load()
        assert config.ws_protocol_class is None


def test_a_served_gateway_freezes_what_its_start_up_made(pki: Pki, home: Path) -> None:
    """``sluis serve`` moves what start-up made (the app, its caches, the libraries) out of
    the collector's reach once the gateway listens: a full collection then walks only what
    requests made since (issue 10: on a loaded gateway each full collection stopped every
    request for 70-160 ms, 14 ms once frozen). In-process servers (the tests') do not."""
    import gc  # noqa: PLC0415 - next to what it checks

    gc.unfreeze()
    settings = gateway_settings(pki, home, _url(home))
    try:
        with running_gateway(settings):
            assert gc.get_freeze_count() == 0
        with running_gateway(settings, freeze_gc=True):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_sluis_serve_runs_its_server_frozen(
    pki: Pki, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` (and each worker of ``--workers``) builds its server with ``freeze_gc``."""
    from gateway import server as module  # noqa: PLC0415 - next to what it checks

    built: list[bool] = []
    monkeypatch.setattr(module.GatewayServer, "run", lambda self, **_: built.append(self.freeze_gc))
    settings = gateway_settings(pki, home, _url(home), port=0)
    module.serve(settings)
    with socket.socket() as listener:
        module._worker(settings, "worker-1", listener, health=False)
    assert built == [True, True]
