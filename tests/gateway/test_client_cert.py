"""Who may vouch for a client certificate: the ASGI middleware on its own, request by request.

The middleware is pure ASGI, so these tests hand it the scope a server would (peer address,
raw headers, the connection's ``tls`` extension) with real certificates from a test PKI, and
read what reaches the app behind it. The same rules over real sockets: test_proxy_trust.py
(a peer outside ``trusted_proxies``) and test_proxy_mode.py (both header formats).
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from gateway.http.client_cert import (
    PARSED_KEY,
    STATE_KEY,
    ClientCertificateMiddleware,
    PresentedCertificate,
)
from tests.support.pki import ClientCert, Pki

PROXY = "10.0.0.7"
TRUSTED = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("2001:db8::/64")]
STRIPPED = [
    b"x-forwarded-client-cert",
    b"ssl-client-cert",
    b"ssl-client-verify",
    b"ssl-client-subject-dn",
    b"ssl-client-issuer-dn",
]


@pytest.fixture(scope="module")
def leaf(tmp_path_factory: pytest.TempPathFactory) -> ClientCert:
    pki = Pki(Path(tmp_path_factory.mktemp("client-cert")) / "pki")
    return pki.client("TU Delft", "NTRNL-41000000")


class Recorder:
    """The app behind the middleware: keeps its scope, reads one message, sends one."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.received: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.received.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})


def _seen(
    scope: dict[str, Any],
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
) -> dict[str, Any]:
    """The scope the app behind the middleware sees (its messages go through unchanged)."""
    app = Recorder()
    middleware = ClientCertificateMiddleware(app, TRUSTED if trusted is None else trusted)
    sent: list[Any] = []

    async def request() -> Any:
        return {"type": "http.request", "body": b"hello"}

    async def keep(message: Any) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, request, keep))
    (seen,) = app.scopes
    assert app.received == [{"type": "http.request", "body": b"hello"}]
    assert sent == [{"type": "http.response.start", "status": 204, "headers": []}]
    return seen


def _scope(
    client: Any = (PROXY, 50000),
    headers: list[tuple[bytes, bytes]] | None = None,
    tls: dict[str, Any] | None = None,
    kind: str = "http",
) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": kind, "client": client, "headers": list(headers or [])}
    if tls is not None:
        scope["extensions"] = {"tls": tls}
    return scope


def _presented(scope: dict[str, Any]) -> PresentedCertificate:
    presented = scope["state"][STATE_KEY]
    assert isinstance(presented, PresentedCertificate)
    return presented


def _xfcc(leaf: ClientCert) -> tuple[bytes, bytes]:
    return (b"x-forwarded-client-cert", f'Hash=abc;Cert="{quote(leaf.leaf_pem)}"'.encode())


def _nginx(leaf: ClientCert, verify: str = "SUCCESS") -> list[tuple[bytes, bytes]]:
    return [
        (b"ssl-client-cert", quote(leaf.leaf_pem).encode()),
        (b"ssl-client-verify", verify.encode()),
    ]


def _tls(leaf: ClientCert) -> dict[str, Any]:
    return {"client_cert_chain": [leaf.leaf_pem]}


def test_a_peer_inside_trusted_proxies_is_believed(leaf: ClientCert) -> None:
    presented = _presented(_seen(_scope(headers=[_xfcc(leaf)])))
    assert presented.source == "proxy"
    assert presented.chain == (leaf.cert,)
    assert presented.problem is None


def test_an_ipv6_proxy_inside_its_network_is_believed(leaf: ClientCert) -> None:
    presented = _presented(_seen(_scope(client=("2001:db8::5", 443), headers=[_xfcc(leaf)])))
    assert presented.source == "proxy"
    assert presented.chain == (leaf.cert,)


@pytest.mark.parametrize(
    "client",
    [
        ("10.0.1.7", 50000),  # just outside 10.0.0.0/24
        ("2001:db8:0:1::5", 443),  # just outside 2001:db8::/64
        None,  # no peer address (a Unix socket)
        ("testclient", 50000),  # a peer that is not an IP address
        ("", 0),
    ],
)
def test_any_other_peer_is_not_believed(leaf: ClientCert, client: Any) -> None:
    seen = _seen(_scope(client=client, headers=[_xfcc(leaf), *_nginx(leaf)]))
    assert _presented(seen) == PresentedCertificate("none")
    assert seen["headers"] == []


def test_with_no_trusted_proxies_nobody_is_believed(leaf: ClientCert) -> None:
    seen = _seen(_scope(headers=[_xfcc(leaf)], tls=_tls(leaf)), trusted=[])
    presented = _presented(seen)
    assert presented.source == "tls"
    assert presented.chain == (leaf.cert,)
    assert seen["headers"] == []


@pytest.mark.parametrize("trusted", [True, False])
def test_every_proxy_header_is_stripped_and_the_rest_kept(trusted: bool) -> None:
    headers = [(b"accept", b"*/*"), *((name, b"x") for name in STRIPPED), (b"host", b"sluis")]
    headers.append((b"X-Forwarded-Client-Cert", b"x"))  # not lower-cased by a sloppy server
    client = (PROXY, 1) if trusted else ("192.0.2.1", 1)
    original = list(headers)
    scope = _scope(client=client, headers=headers)
    seen = _seen(scope)
    assert seen["headers"] == [(b"accept", b"*/*"), (b"host", b"sluis")]
    assert scope["headers"] == original  # the server's own scope is left as it was


def test_websocket_scopes_are_handled_like_http(leaf: ClientCert) -> None:
    seen = _seen(_scope(headers=[_xfcc(leaf)], kind="websocket"))
    assert _presented(seen).source == "proxy"
    assert seen["headers"] == []


def test_lifespan_scopes_pass_untouched() -> None:
    scope = {"type": "lifespan", "headers": [(b"ssl-client-cert", b"x")]}
    seen = _seen(scope)
    assert seen is scope
    assert "state" not in seen
    assert seen["headers"] == [(b"ssl-client-cert", b"x")]


def test_the_state_already_in_the_scope_is_kept(leaf: ClientCert) -> None:
    scope = _scope(tls=_tls(leaf))
    scope["state"] = {"other": 1}
    seen = _seen(scope, trusted=[])
    assert seen["state"]["other"] == 1
    assert _presented(seen).source == "tls"


def test_no_tls_extension_or_an_empty_chain_is_no_certificate() -> None:
    assert _presented(_seen(_scope(), trusted=[])) == PresentedCertificate("none")
    empty = _scope(tls={"client_cert_chain": []})
    assert _presented(_seen(empty, trusted=[])) == PresentedCertificate("none")
    assert _presented(_seen(_scope(tls={}), trusted=[])) == PresentedCertificate("none")


def test_the_connections_certificate_is_parsed_once(leaf: ClientCert) -> None:
    tls = _tls(leaf)
    first = _presented(_seen(_scope(tls=tls), trusted=[]))
    assert tls[PARSED_KEY] is first
    tls["client_cert_chain"] = ["not a certificate any more"]
    assert _presented(_seen(_scope(tls=tls), trusted=[])) is first


def test_a_tls_chain_that_does_not_parse_is_malformed() -> None:
    presented = _presented(_seen(_scope(tls={"client_cert_chain": ["junk"]}), trusted=[]))
    assert presented.source == "tls"
    assert presented.chain == ()
    assert presented.problem is not None
    assert presented.problem.code == "malformed"


def test_a_tls_chain_of_several_certificates_is_joined(leaf: ClientCert) -> None:
    chain = leaf.cert_path.read_text()  # leaf and issuing CA
    presented = _presented(_seen(_scope(tls={"client_cert_chain": [chain, chain]}), trusted=[]))
    assert len(presented.chain) == 4
    assert presented.chain[0] == leaf.cert


def test_nginx_headers_are_believed_from_a_proxy(leaf: ClientCert) -> None:
    presented = _presented(_seen(_scope(headers=_nginx(leaf))))
    assert presented.source == "proxy"
    assert presented.chain == (leaf.cert,)


def test_nginx_without_a_verdict_is_malformed(leaf: ClientCert) -> None:
    presented = _presented(_seen(_scope(headers=_nginx(leaf)[:1])))
    assert presented.source == "proxy"
    assert presented.problem is not None
    assert presented.problem.code == "malformed"
    assert presented.problem.detail == "proxy did not verify the certificate (NONE)"


def test_xfcc_wins_over_nginx_headers(leaf: ClientCert, tmp_path: Path) -> None:
    other = Pki(tmp_path / "other").client("Other", "NTRNL-42000000")
    presented = _presented(_seen(_scope(headers=[*_nginx(other), _xfcc(leaf)])))
    assert presented.chain == (leaf.cert,)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-forwarded-client-cert", b"Cert=x"),
        (b"ssl-client-cert", b"x"),
        (b"ssl-client-verify", b"SUCCESS"),
    ],
)
def test_a_repeated_proxy_header_is_malformed(leaf: ClientCert, name: bytes, value: bytes) -> None:
    headers = [_xfcc(leaf), *_nginx(leaf), (name, value)]
    presented = _presented(_seen(_scope(headers=headers)))
    assert presented.source == "proxy"
    assert presented.chain == ()
    assert presented.problem is not None
    assert presented.problem.code == "malformed"
    assert presented.problem.detail == f"{name.decode()} header repeated"


def test_a_proxy_header_in_capitals_is_read(leaf: ClientCert) -> None:
    name, value = _xfcc(leaf)
    presented = _presented(_seen(_scope(headers=[(name.upper(), value)])))
    assert presented.chain == (leaf.cert,)


def test_a_latin1_header_value_is_read_not_refused() -> None:
    headers = [(b"x-forwarded-client-cert", "By=caf\u00e9;Hash=x".encode("latin-1"))]
    assert _presented(_seen(_scope(headers=headers))) == PresentedCertificate("none")


def test_a_proxy_request_without_certificate_headers_has_none() -> None:
    seen = _seen(_scope(headers=[(b"accept", b"*/*")]))
    assert _presented(seen) == PresentedCertificate("none")
