"""tokens.VerifiedMemo: a connection's last verified token skips only its signature check.

The same token text under the same key object verified before; any other text, another key
object (even under the same kid), and every claim check (times, audience, binding) still
run. Wired per TLS connection by gateway/http/bearer.py, never for a proxy's connection.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc.jwk import KeySet
from starlette.requests import Request

from gateway.auth import tokens
from gateway.auth.jose import OWN_TOKEN_ALGS, import_private, import_public, public_jwk
from gateway.auth.tokens import TokenRejected, TrustedIssuer, VerifiedMemo
from gateway.http.bearer import MEMO_KEY, _memo
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from tests.gateway.test_tokens import ISSUER, NOW, THUMB


def _keys(
    private: ed25519.Ed25519PrivateKey, kid: str | None = None
) -> tuple[Any, dict[str, TrustedIssuer]]:
    """The signing key and the issuers publishing its public half (under ``kid`` if given)."""
    signing = import_private(private)
    public = import_public({**public_jwk(signing, "Ed25519"), "kid": kid or signing.kid})
    return signing, {ISSUER: TrustedIssuer(ISSUER, KeySet([public]), OWN_TOKEN_ALGS)}


def _mint(signing: Any, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "key": signing, "alg": "Ed25519", "issuer": ISSUER, "client_id": "NTRNL-40000001",
        "audience": ISSUER, "scopes": frozenset({"dataset:sensors"}), "thumbprint": THUMB,
        "jti": "jti-1", "now": NOW, "lifetime": timedelta(minutes=5),
    }  # fmt: skip
    values.update(overrides)
    return tokens.mint(**values)[0]


def _check(token: str, issuers: dict[str, TrustedIssuer], memo: VerifiedMemo, **kw: Any) -> Any:
    values: dict[str, Any] = {"audience": ISSUER, "thumbprint": THUMB, "now": NOW}
    values.update(kw)
    return tokens.check(token, issuers, memo=memo, **values)


@pytest.fixture
def signed() -> tuple[Any, dict[str, TrustedIssuer], str]:
    signing, issuers = _keys(ed25519.Ed25519PrivateKey.generate())
    return signing, issuers, _mint(signing)


def test_the_same_token_under_the_same_key_is_verified_once(
    signed: tuple[Any, dict[str, TrustedIssuer], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _signing, issuers, token = signed
    calls: list[str] = []
    real = tokens.verify_signature

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens, "verify_signature", counting)
    memo = VerifiedMemo()
    first = _check(token, issuers, memo)
    again = _check(token, issuers, memo)
    assert first == again
    assert calls == [token]


def test_another_key_under_the_same_kid_verifies_again(
    signed: tuple[Any, dict[str, TrustedIssuer], str],
) -> None:
    signing, issuers, token = signed
    memo = VerifiedMemo()
    _check(token, issuers, memo)
    _other, republished = _keys(ed25519.Ed25519PrivateKey.generate(), kid=signing.kid)
    with pytest.raises(TokenRejected) as info:
        _check(token, republished, memo)
    assert info.value.code == "bad-signature"


def test_another_text_verifies_again(signed: tuple[Any, dict[str, TrustedIssuer], str]) -> None:
    _signing, issuers, token = signed
    memo = VerifiedMemo()
    _check(token, issuers, memo)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(TokenRejected) as info:
        _check(forged, issuers, memo)
    assert info.value.code == "bad-signature"
    assert _check(token, issuers, memo).jti == "jti-1"  # the verified one still passes


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"now": NOW + timedelta(minutes=10)}, "expired"),
        ({"audience": "https://elsewhere.example"}, "wrong-audience"),
        ({"thumbprint": "another-certificate-thumbprint-0123456789AB"}, "wrong-certificate"),
    ],
)
def test_a_remembered_token_is_still_checked_in_full(
    signed: tuple[Any, dict[str, TrustedIssuer], str], overrides: dict[str, Any], code: str
) -> None:
    _signing, issuers, token = signed
    memo = VerifiedMemo()
    _check(token, issuers, memo)
    with pytest.raises(TokenRejected) as info:
        _check(token, issuers, memo, **overrides)
    assert info.value.code == code


def _request(source: str, tls: dict[str, Any] | None) -> Request:
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": "/", "headers": [],
        "state": {STATE_KEY: PresentedCertificate(source)},  # type: ignore[arg-type]
        "extensions": {"tls": tls} if tls is not None else {},
    }  # fmt: skip
    return Request(scope)


def test_the_memo_lives_in_the_tls_connection() -> None:
    tls: dict[str, Any] = {}
    memo = _memo(_request("tls", tls))
    assert memo is not None
    assert tls[MEMO_KEY] is memo
    assert _memo(_request("tls", tls)) is memo  # the next request on the connection
    assert _memo(_request("tls", {})) is not memo  # another connection


def test_no_memo_for_a_proxy_connection_or_without_tls() -> None:
    tls: dict[str, Any] = {}
    assert _memo(_request("proxy", tls)) is None
    assert tls == {}
    assert _memo(_request("tls", None)) is None
