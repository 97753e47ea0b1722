"""The resource server's own algorithm guards, each shown to be what refuses a token.

``tokens.check`` has two guards before any signature is verified: ``none`` and every HMAC
algorithm are never accepted (whatever an issuer is configured with), and ``alg`` must be on
the issuer's allow-list. joserfc would refuse most of these tokens too, but as a bad
signature: each test here asserts the guard's own code *and* message, so removing either
guard fails a test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.auth import tokens
from gateway.auth.jose import import_private, import_public, public_jwk
from gateway.auth.tokens import TokenRejected, TrustedIssuer

ISSUER = "https://gateway.example"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
THUMB = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CLAIMS = {
    "iss": ISSUER,
    "sub": "NTRNL-40000001",
    "client_id": "NTRNL-40000001",
    "aud": ISSUER,
    "iat": int(NOW.timestamp()),
    "nbf": int(NOW.timestamp()),
    "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    "jti": "jti-1",
    "scope": "dataset:sensors",
    "cnf": {"x5t#S256": THUMB},
}


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hmac_jws(header: dict[str, object], secret: bytes) -> str:
    """A JWS "signed" with ``secret`` by hand (joserfc rightly refuses PEM as an HMAC key)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    signing_input = f"{_b64(header)}.{_b64(CLAIMS)}"
    mac = hmac.new(secret, signing_input.encode(), digest[str(header["alg"])]).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _refusal(token: str, issuers: dict[str, TrustedIssuer]) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        tokens.check(token, issuers, audience=ISSUER, thumbprint=THUMB, now=NOW)
    return info.value


def _es256_issuer(*algorithms: str) -> tuple[object, dict[str, TrustedIssuer]]:
    key = import_private(ec.generate_private_key(ec.SECP256R1()))
    public = import_public(public_jwk(key, "ES256"))
    return key, {ISSUER: TrustedIssuer(ISSUER, KeySet([public]), algorithms)}


def test_the_issuers_own_algorithm_is_accepted() -> None:
    key, issuers = _es256_issuer("ES256")
    token = jwt.encode({"typ": "at+jwt", "alg": "ES256", "kid": key.kid}, CLAIMS, key)  # type: ignore[attr-defined]
    claims = tokens.check(token, issuers, audience=ISSUER, thumbprint=THUMB, now=NOW)
    assert claims.client_id == "NTRNL-40000001"


def test_rs256_where_only_es256_is_configured_is_refused_by_the_allow_list() -> None:
    ec_key, issuers = _es256_issuer("ES256")
    rsa_key = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    header = {"typ": "at+jwt", "alg": "RS256", "kid": ec_key.kid}  # type: ignore[attr-defined]
    forged = jwt.encode(header, CLAIMS, rsa_key, algorithms=["RS256"])
    refusal = _refusal(forged, issuers)
    assert refusal.code == "algorithm-not-allowed"
    assert refusal.detail == "alg RS256 is not accepted"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_the_public_key_is_never_accepted(alg: str) -> None:
    """Even from an issuer (mis)configured to allow HMAC: key confusion must be impossible."""
    key, issuers = _es256_issuer("ES256", alg)
    public = next(iter(issuers[ISSUER].keys.keys))
    for secret_bytes in (
        json.dumps(public.as_dict()).encode(),
        public.as_pem(private=False),  # type: ignore[attr-defined]
    ):
        header = {"typ": "at+jwt", "alg": alg, "kid": key.kid}  # type: ignore[attr-defined]
        forged = _hmac_jws(header, secret_bytes)
        refusal = _refusal(forged, issuers)
        assert refusal.code == "algorithm-not-allowed"
        assert refusal.detail == f"alg {alg!r} is never accepted"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_never_accepted(alg: str) -> None:
    key, issuers = _es256_issuer("ES256", alg)
    header = {"typ": "at+jwt", "alg": alg, "kid": key.kid}  # type: ignore[attr-defined]
    forged = f"{_b64(header)}.{_b64(CLAIMS)}."
    refusal = _refusal(forged, issuers)
    assert refusal.code == "algorithm-not-allowed"
    assert refusal.detail == f"alg {alg!r} is never accepted"
