"""tokens.VerifiedMemo and tokens.VerifiedTokens: a token verified before skips only its
signature check.

The same token text under the same key object verified before; any other text, another key
object (even under the same kid), and every claim check (times, audience, binding) still
run. The memo is wired per TLS connection by gateway/http/bearer.py, never for a proxy's
connection; the bounded set of verified tokens per process by gateway/oauth/service.py.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc.jwk import KeySet
from starlette.requests import Request

from gateway.auth import tokens
from gateway.auth.jose import OWN_TOKEN_ALGS, import_private, import_public, public_jwk
from gateway.auth.tokens import TokenRejected, TrustedIssuer, VerifiedMemo, VerifiedTokens
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


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signatures are verified from now on, in order."""
    calls: list[str] = []
    real = tokens.verify_signature

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens, "verify_signature", counting)
    return calls


def _on_new_connection(token: str, issuers: dict[str, TrustedIssuer], kept: VerifiedTokens,
                       **kw: Any) -> Any:  # fmt: skip
    return _check(token, issuers, VerifiedMemo(), verified=kept, **kw)


@pytest.fixture
def signed() -> tuple[Any, dict[str, TrustedIssuer], str]:
    signing, issuers = _keys(ed25519.Ed25519PrivateKey.generate())
    return signing, issuers, _mint(signing)


def test_the_same_token_under_the_same_key_is_verified_once(
    signed: tuple[Any, dict[str, TrustedIssuer], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _signing, issuers, token = signed
    calls = _counting(monkeypatch)
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
@pytest.mark.parametrize("remembered_by", ["connection", "process"])
def test_a_remembered_token_is_still_checked_in_full(
    signed: tuple[Any, dict[str, TrustedIssuer], str],
    overrides: dict[str, Any],
    code: str,
    remembered_by: str,
) -> None:
    """Remembered by the connection's memo, or by the process on a new connection."""
    _signing, issuers, token = signed
    memo, kept = VerifiedMemo(), VerifiedTokens()

    def check(**kw: Any) -> Any:
        if remembered_by == "connection":
            return _check(token, issuers, memo, **kw)
        return _on_new_connection(token, issuers, kept, **kw)

    check()
    with pytest.raises(TokenRejected) as info:
        check(**overrides)
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


def test_a_token_verified_on_one_connection_is_not_verified_again_on_the_next(
    signed: tuple[Any, dict[str, TrustedIssuer], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _signing, issuers, token = signed
    calls = _counting(monkeypatch)
    kept = VerifiedTokens()
    first = _on_new_connection(token, issuers, kept)
    assert _on_new_connection(token, issuers, kept) == first
    assert calls == [token]


def test_the_process_set_keeps_digests_not_tokens(
    signed: tuple[Any, dict[str, TrustedIssuer], str],
) -> None:
    _signing, issuers, token = signed
    kept = VerifiedTokens()
    _on_new_connection(token, issuers, kept)
    assert list(kept._kept) == [hashlib.sha256(token.encode()).digest()]


def test_another_key_under_the_same_kid_is_checked_despite_the_process_set(
    signed: tuple[Any, dict[str, TrustedIssuer], str],
) -> None:
    signing, issuers, token = signed
    kept = VerifiedTokens()
    _on_new_connection(token, issuers, kept)
    _other, republished = _keys(ed25519.Ed25519PrivateKey.generate(), kid=signing.kid)
    with pytest.raises(TokenRejected) as info:
        _on_new_connection(token, republished, kept)
    assert info.value.code == "bad-signature"


def test_a_token_that_does_not_verify_is_not_kept(
    signed: tuple[Any, dict[str, TrustedIssuer], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _signing, issuers, token = signed
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    calls = _counting(monkeypatch)
    kept = VerifiedTokens()
    for _ in range(2):
        with pytest.raises(TokenRejected) as info:
            _on_new_connection(forged, issuers, kept)
        assert info.value.code == "bad-signature"
    assert (len(kept), calls) == (0, [forged, forged])


def test_the_least_recently_used_token_is_forgotten_past_the_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signing, issuers = _keys(ed25519.Ed25519PrivateKey.generate())
    a, b, c = (_mint(signing, jti=f"jti-{n}") for n in "abc")
    kept = VerifiedTokens(capacity=2)
    _on_new_connection(a, issuers, kept)
    _on_new_connection(b, issuers, kept)
    _on_new_connection(a, issuers, kept)  # a used last: b is now the least recent
    calls = _counting(monkeypatch)
    _on_new_connection(c, issuers, kept)  # b forgotten
    assert len(kept) == 2
    _on_new_connection(a, issuers, kept)
    _on_new_connection(b, issuers, kept)
    assert calls == [c, b]


def test_a_process_set_holds_at_least_one_token() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        VerifiedTokens(capacity=0)
    assert len(VerifiedTokens(capacity=1)) == 0
