"""The resource-server check, pure: every forged, stale or misdirected token is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from gateway.auth import tokens
from gateway.auth.jose import OWN_TOKEN_ALGS, import_private, import_public, public_jwk
from gateway.auth.tokens import TokenRejected, TrustedIssuer

ISSUER = "https://gateway.example"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
THUMB = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def _ring(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> tuple[object, str, dict[str, TrustedIssuer]]:
    jose_key = import_private(key)
    alg = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"
    public = import_public(public_jwk(jose_key, alg))
    return jose_key, alg, {ISSUER: TrustedIssuer(ISSUER, KeySet([public]), OWN_TOKEN_ALGS)}


@pytest.fixture(params=["ES256", "Ed25519"])
def ring(request: pytest.FixtureRequest) -> tuple[object, str, dict[str, TrustedIssuer]]:
    if request.param == "ES256":
        return _ring(ec.generate_private_key(ec.SECP256R1()))
    return _ring(ed25519.Ed25519PrivateKey.generate())


def _mint(ring: tuple[object, str, dict[str, TrustedIssuer]], **overrides: object) -> str:
    key, alg, _ = ring
    values: dict[str, object] = {
        "key": key,
        "alg": alg,
        "issuer": ISSUER,
        "client_id": "NTRNL-40000001",
        "audience": ISSUER,
        "scopes": frozenset({"dataset:sensors"}),
        "thumbprint": THUMB,
        "jti": "jti-1",
        "now": NOW,
        "lifetime": timedelta(minutes=5),
    }
    values.update(overrides)
    token, _ = tokens.mint(**values)  # type: ignore[arg-type]
    return token


def _check(
    ring: tuple[object, str, dict[str, TrustedIssuer]], token: str, **overrides: object
) -> tokens.AccessClaims:
    values: dict[str, object] = {"audience": ISSUER, "thumbprint": THUMB, "now": NOW}
    values.update(overrides)
    return tokens.check(token, ring[2], **values)  # type: ignore[arg-type]


def _code(
    ring: tuple[object, str, dict[str, TrustedIssuer]], token: str, **overrides: object
) -> str:
    with pytest.raises(TokenRejected) as info:
        _check(ring, token, **overrides)
    return info.value.code


def _b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _resign_header(token: str, **header: object) -> str:
    """The same claims and signature under a changed header (so the signature breaks)."""
    head, body, sig = token.split(".")
    original = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    original.update(header)
    return ".".join([_b64(original), body, sig])


def test_a_good_token_passes(ring: tuple[object, str, dict[str, TrustedIssuer]]) -> None:
    claims = _check(ring, _mint(ring))
    assert claims.client_id == "NTRNL-40000001"
    assert claims.scopes == {"dataset:sensors"}
    assert claims.thumbprint == THUMB
    assert claims.expires_at - claims.issued_at == 300


def test_leeway_is_at_most_60_seconds(ring: tuple[object, str, dict[str, TrustedIssuer]]) -> None:
    token = _mint(ring)
    assert _check(ring, token, now=NOW + timedelta(seconds=330)).jti == "jti-1"
    assert _code(ring, token, now=NOW + timedelta(seconds=361)) == "expired"
    assert _code(ring, token, now=NOW + timedelta(seconds=400), leeway=3600) == "expired"
    assert _code(ring, token, now=NOW - timedelta(seconds=61)) == "not-yet-valid"


def test_alg_none_is_refused(ring: tuple[object, str, dict[str, TrustedIssuer]]) -> None:
    _, body, _ = _mint(ring).split(".")
    forged = ".".join([_b64({"typ": "at+jwt", "alg": "none"}), body, ""])
    assert _code(ring, forged) == "algorithm-not-allowed"


def test_hs256_signed_with_the_public_key_is_refused(
    ring: tuple[object, str, dict[str, TrustedIssuer]],
) -> None:
    public = next(iter(ring[2][ISSUER].keys.keys))
    secret = OctKey.import_key(json.dumps(public.as_dict()).encode())
    claims = json.loads(base64.urlsafe_b64decode(_mint(ring).split(".")[1] + "=="))
    forged = jwt.encode({"typ": "at+jwt", "alg": "HS256", "kid": public.kid}, claims, secret)
    assert _code(ring, forged) == "algorithm-not-allowed"


def test_typ_jwt_is_refused(ring: tuple[object, str, dict[str, TrustedIssuer]]) -> None:
    assert _code(ring, _resign_header(_mint(ring), typ="JWT")) == "wrong-type"
    assert _code(ring, _resign_header(_mint(ring), typ=None)) == "wrong-type"


def test_wrong_audience_issuer_and_certificate(
    ring: tuple[object, str, dict[str, TrustedIssuer]],
) -> None:
    assert _code(ring, _mint(ring, audience="https://elsewhere")) == "wrong-audience"
    assert _code(ring, _mint(ring, issuer="https://evil.example")) == "unknown-issuer"
    assert _code(ring, _mint(ring), thumbprint="another-certificate") == "wrong-certificate"


def test_a_token_signed_by_another_key_is_refused(
    ring: tuple[object, str, dict[str, TrustedIssuer]],
) -> None:
    stranger = import_private(ec.generate_private_key(ec.SECP256R1()))
    victim_kid = next(iter(ring[2][ISSUER].keys.keys)).kid
    claims = json.loads(base64.urlsafe_b64decode(_mint(ring).split(".")[1] + "=="))
    header = {"typ": "at+jwt", "alg": "ES256", "kid": victim_kid}
    forged = jwt.encode(header, claims, stranger, algorithms=["ES256"])
    assert _code(ring, forged) in {"bad-signature", "algorithm-not-allowed"}


def test_unbound_tokens_are_refused(ring: tuple[object, str, dict[str, TrustedIssuer]]) -> None:
    key, alg, _ = ring
    claims = {"iss": ISSUER, "sub": "x", "client_id": "x", "aud": ISSUER, "iat": 1795737600,
              "exp": 1795737600 + 300, "jti": "j"}  # fmt: skip
    assert isinstance(key, ECKey | type(key))
    token = jwt.encode({"typ": "at+jwt", "alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])  # type: ignore[attr-defined]
    assert _code(ring, token, now=datetime.fromtimestamp(1795737600, UTC)) == "unbound"


@pytest.mark.parametrize(
    "garbage",
    ["", "a.b", "a.b.c.d", "!!!.???.###", _b64(b"[]") + "." + _b64(b"{}") + ".x", "x" * 20000],
)
def test_malformed_tokens_are_refused(
    ring: tuple[object, str, dict[str, TrustedIssuer]], garbage: str
) -> None:
    assert _code(ring, garbage) in {"malformed", "wrong-type"}


def _segments(token: str) -> list[bytes] | None:
    try:
        return [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")]
    except ValueError:
        return None


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_bit_flip_is_refused(position: int, bit: int) -> None:
    ring = _ring(ec.generate_private_key(ec.SECP256R1()))
    original = _mint(ring)
    flipped = bytearray(original.encode())
    flipped[position % len(flipped)] ^= 1 << bit
    try:
        text = flipped.decode()
    except UnicodeDecodeError:
        return
    if _segments(text) == _segments(original):
        return  # a flip in base64's unused padding bits changes nothing
    with pytest.raises(TokenRejected):
        _check(ring, text)
