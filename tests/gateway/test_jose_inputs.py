"""gateway/auth/jose.py's own refusals with their exact words, and its boundaries.

Survivors of ``make mutate`` over gateway/auth/jose.py and tokens.py: the `crit` header, the
RSA size boundary, the token size boundary, each refusal's sentence.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey

from gateway.auth import tokens
from gateway.auth.jose import (
    MAX_JWT_BYTES,
    OWN_TOKEN_ALGS,
    JoseInputError,
    decode,
    import_private,
    import_public,
    peek,
    public_jwk,
    registry,
)
from gateway.auth.tokens import TokenRejected, TrustedIssuer

ISSUER = "https://gateway.example"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KEY = import_private(ec.generate_private_key(ec.SECP256R1()))


def _b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _public(key: object) -> dict[str, object]:
    return dict(key.as_dict(private=False))  # type: ignore[attr-defined]


def _rsa_jwk(bits: int) -> dict[str, object]:
    """An RSA public JWK of ``bits``, built from the numbers (joserfc warns on weak ones)."""
    numbers = rsa.generate_private_key(65537, bits).public_key().public_numbers()

    def b64int(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "n": b64int(numbers.n), "e": b64int(numbers.e)}


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        (ECKey.import_key(ec.generate_private_key(ec.SECP256R1())).as_dict(private=True),
         "a private key was offered where a public key belongs"),
        (_public(ECKey.import_key(ec.generate_private_key(ec.SECP384R1()))),
         "EC keys must be on P-256"),
        (_public(OKPKey.import_key(x25519.X25519PrivateKey.generate())),
         "OKP keys must be Ed25519"),
        (_rsa_jwk(2047), "RSA keys must have at least 2048 bits"),
        ({"kty": "oct", "k": "AAAA"}, "unsupported key type 'oct'"),
    ],
    ids=["private", "p384", "x25519", "rsa2047", "oct"],
)  # fmt: skip
def test_a_public_key_that_is_refused_says_why(jwk: dict[str, object], message: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc's own note on weak RSA
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            import_public(jwk)


@pytest.mark.parametrize(
    "jwk",
    [_rsa_jwk(2048), _public(OKPKey.import_key(ed25519.Ed25519PrivateKey.generate()))],
    ids=["rsa2048", "ed25519"],
)
def test_the_smallest_accepted_keys(jwk: dict[str, object]) -> None:
    key = import_public(jwk)
    assert key.kid  # a thumbprint kid, ready for a key set


def test_a_published_key_is_public_with_alg_use_and_kid() -> None:
    published = public_jwk(KEY, "ES256")
    assert (published["alg"], published["use"], published["kid"]) == ("ES256", "sig", KEY.kid)
    assert "d" not in published


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("a.b", "not a compact JWS"),
        ("!!.!!.x", "undecodable JWS"),
        (f"{_b64([1])}.{_b64({})}.x", "JWS header and payload must be JSON objects"),
        ("a" * (MAX_JWT_BYTES + 1), "token too large"),
    ],
    ids=["parts", "undecodable", "not-objects", "too-large"],
)
def test_an_unreadable_token_says_why(token: str, message: str) -> None:
    with pytest.raises(JoseInputError) as info:
        peek(token)
    assert str(info.value) == message
    with pytest.raises(TokenRejected) as refused:
        tokens.check(token, {}, audience=ISSUER, thumbprint="t", now=NOW)
    assert (refused.value.code, refused.value.detail) == ("malformed", message)


def test_a_token_of_exactly_the_size_cap_is_read() -> None:
    head, body = _b64({"typ": "at+jwt"}), _b64({"iss": ISSUER})
    token = f"{head}.{body}." + "A" * (MAX_JWT_BYTES - len(head) - len(body) - 2)
    assert len(token) == MAX_JWT_BYTES
    assert peek(token) == ({"typ": "at+jwt"}, {"iss": ISSUER})


def _issuers() -> dict[str, TrustedIssuer]:
    public = import_public(public_jwk(KEY, "ES256"))
    return {ISSUER: TrustedIssuer(ISSUER, KeySet([public]), OWN_TOKEN_ALGS)}


@pytest.mark.parametrize(
    ("header", "claims", "code", "detail"),
    [
        ({"crit": ["exp"]}, {}, "malformed", "critical header parameters are not supported"),
        ({}, {"iss": "https://stranger.example"}, "unknown-issuer",
         "the token's issuer is not trusted"),
    ],
    ids=["crit", "unknown-issuer"],
)  # fmt: skip
def test_a_header_or_issuer_we_cannot_honour_is_refused(
    header: dict[str, object], claims: dict[str, object], code: str, detail: str
) -> None:
    head = {"typ": "at+jwt", "alg": "ES256", "kid": KEY.kid, **header}
    if "crit" in header:  # joserfc will not sign it; the check refuses before any signature
        token = f"{_b64(head)}.{_b64({'iss': ISSUER})}.c2ln"
    else:
        token = jwt.encode(head, {"iss": ISSUER, **claims}, KEY, algorithms=["ES256"])
    with pytest.raises(TokenRejected) as refused:
        tokens.check(token, _issuers(), audience=ISSUER, thumbprint="t", now=NOW)
    assert (refused.value.code, refused.value.detail) == (code, detail)


def test_a_signature_that_does_not_verify_says_so() -> None:
    other = import_private(ec.generate_private_key(ec.SECP256R1()))
    head = {"typ": "at+jwt", "alg": "ES256", "kid": KEY.kid}
    token = jwt.encode(head, {"iss": ISSUER}, other, algorithms=["ES256"])
    with pytest.raises(TokenRejected) as refused:
        tokens.check(token, _issuers(), audience=ISSUER, thumbprint="t", now=NOW)
    expected = ("bad-signature", "the token's signature does not verify")
    assert (refused.value.code, refused.value.detail) == expected


def test_a_header_parameter_outside_the_registry_is_read() -> None:
    # joserfc's strict header check would refuse a parameter RFC 7515 does not register;
    # issuers add their own (a trace id, a tenant), and what the token says is checked by
    # its claims, not by which header names it carries.
    header = {"alg": "ES256", "kid": "k1", "x-tenant": "fieldlab"}
    token = jwt.encode(header, {"sub": "x"}, KEY, registry=registry(("ES256",)))
    decoded = decode(token, KEY, ("ES256",))
    assert (decoded.header["x-tenant"], decoded.claims) == ("fieldlab", {"sub": "x"})


def test_an_eddsa_token_is_read_without_joserfc_s_deprecation_warning() -> None:
    key = import_private(ed25519.Ed25519PrivateKey.generate())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # signing is not what is tested
        token = jwt.encode({"alg": "EdDSA"}, {"sub": "x"}, key, algorithms=["EdDSA"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning decode lets through fails here
        assert decode(token, key, ("EdDSA",)).claims == {"sub": "x"}


def test_a_larger_header_cap_reaches_the_registry() -> None:
    # The client assertions' x5c chains need more than the default 512 characters.
    chain = {"alg": "ES256", "x5c": ["A" * 600]}
    token = jwt.encode(chain, {"sub": "x"}, KEY, registry=registry(("ES256",), max_header=2048))
    assert decode(token, KEY, ("ES256",), max_header=2048).claims == {"sub": "x"}
    with pytest.raises(JoseError, match="Header size exceeds 512"):
        decode(token, KEY, ("ES256",))
