"""The resource server's claim checks one by one, with exact codes, details and boundaries.

Each case is a survivor of ``make mutate`` over gateway/auth/tokens.py: the signed-token
tests reach these checks, but did not tell a changed code, boundary or default apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.auth import tokens
from gateway.auth.jose import OWN_TOKEN_ALGS, import_private, import_public, public_jwk
from gateway.auth.tokens import TokenRejected, TrustedIssuer
from gateway.auth.windows import TOKEN_LEEWAY

ISSUER = "https://gateway.example"
THUMB = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MOMENT = int(NOW.timestamp())
KEY = import_private(ec.generate_private_key(ec.SECP256R1()))
ISSUERS = {
    ISSUER: TrustedIssuer(ISSUER, KeySet([import_public(public_jwk(KEY, "ES256"))]), OWN_TOKEN_ALGS)
}
ABSENT = object()


def _claims(**changed: object) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "c", "client_id": "c", "aud": ISSUER, "iat": MOMENT,
        "nbf": MOMENT, "exp": MOMENT + 300, "jti": "j", "scope": "a b",
        "cnf": {"x5t#S256": THUMB},
    }  # fmt: skip
    claims.update(changed)
    return {k: v for k, v in claims.items() if v is not ABSENT}


def _check(claims: dict[str, Any], header: dict[str, Any] | None = None) -> tokens.AccessClaims:
    head = {"typ": "at+jwt", "alg": "ES256", "kid": KEY.kid, **(header or {})}
    head = {k: v for k, v in head.items() if v is not ABSENT}
    token = jwt.encode(head, claims, KEY, algorithms=["ES256"])
    return tokens.check(token, ISSUERS, audience=ISSUER, thumbprint=THUMB, now=NOW)


def _refused(claims: dict[str, Any], header: dict[str, Any] | None = None) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        _check(claims, header)
    return info.value


PRESENT = "sub, client_id and jti must be present"
UNBOUND = "the token is not bound to a certificate (cnf.x5t#S256)"


@pytest.mark.parametrize(
    ("changed", "code", "detail"),
    [
        ({"aud": [ISSUER + "/other"]}, "wrong-audience", "the token is meant for another audience"),
        ({"aud": 7}, "wrong-audience", "the token is meant for another audience"),
        ({"exp": MOMENT - TOKEN_LEEWAY - 1}, "expired", "the token has expired"),
        ({"iat": MOMENT + TOKEN_LEEWAY + 1}, "not-yet-valid", "the token is not valid yet"),
        ({"nbf": MOMENT + TOKEN_LEEWAY + 1}, "not-yet-valid", "the token is not valid yet"),
        ({"sub": ABSENT}, "malformed", PRESENT),
        ({"client_id": ""}, "malformed", PRESENT),
        ({"jti": 5}, "malformed", PRESENT),
        ({"exp": ABSENT}, "malformed", "exp must be present as an integer NumericDate"),
        ({"iat": ABSENT}, "malformed", "iat must be present as an integer NumericDate"),
        ({"nbf": True}, "malformed", "nbf must be present as an integer NumericDate"),
        ({"nbf": "now"}, "malformed", "nbf must be present as an integer NumericDate"),
        ({"cnf": ABSENT}, "unbound", UNBOUND),
        ({"cnf": {"x5t#S256": ""}}, "unbound", UNBOUND),
        ({"cnf": {"x5t#S256": 5}}, "unbound", UNBOUND),
        ({"cnf": "x"}, "unbound", UNBOUND),
        ({"cnf": {"x5t#S256": THUMB[:-1] + "H"}}, "wrong-certificate",
         "the token is bound to another certificate"),
    ],
)  # fmt: skip
def test_a_claim_that_does_not_hold_is_refused_exactly(
    changed: dict[str, object], code: str, detail: str
) -> None:
    refused = _refused(_claims(**changed))
    assert (refused.code, refused.detail, refused.error) == (code, detail, "invalid_token")
    assert str(refused) == f"{code}: {detail}"


@pytest.mark.parametrize(
    ("header", "code", "detail"),
    [
        ({"typ": "JWT"}, "wrong-type", "the token is not an access token (typ must be at+jwt)"),
        ({"kid": ABSENT}, "unknown-key", "the token names no key id"),
        ({"kid": "other"}, "unknown-key", "the token's key id is not published by its issuer"),
    ],
)
def test_a_header_that_does_not_hold_is_refused_exactly(
    header: dict[str, object], code: str, detail: str
) -> None:
    refused = _refused(_claims(), header)
    assert (refused.code, refused.detail) == (code, detail)


def test_an_issuer_listed_under_another_name_is_not_that_issuer() -> None:
    aliased = {"https://alias.example": ISSUERS[ISSUER]}
    token = jwt.encode(
        {"typ": "at+jwt", "alg": "ES256", "kid": KEY.kid},
        _claims(iss="https://alias.example"),
        KEY,
        algorithms=["ES256"],
    )
    with pytest.raises(TokenRejected) as info:
        tokens.check(token, aliased, audience=ISSUER, thumbprint=THUMB, now=NOW)
    assert (info.value.code, info.value.detail) == (
        "wrong-issuer",
        "the token's issuer does not match",
    )


def test_the_boundaries_and_defaults_that_are_accepted() -> None:
    edge = MOMENT + TOKEN_LEEWAY
    assert _check(_claims(iat=edge, nbf=edge)).issued_at == edge  # exactly at the leeway
    assert _check(_claims(nbf=ABSENT)).expires_at == MOMENT + 300  # nbf is optional
    both = _check(_claims(aud=[ISSUER + "/other", ISSUER]))
    assert both.audience == (ISSUER + "/other", ISSUER)  # a list holding ours
    assert _check(_claims(scope=["a"])).scopes == frozenset()  # not a string: no scopes
    assert _check(_claims(scope=ABSENT)).scopes == frozenset()  # no scope claim: none
    read = _check(_claims(sub="subject-1", client_id="client-1", jti="jti-1"))
    assert (read.issuer, read.subject, read.client_id, read.jti) == (
        ISSUER,
        "subject-1",
        "client-1",
        "jti-1",
    )
    assert (read.issued_at, read.expires_at, read.thumbprint) == (MOMENT, MOMENT + 300, THUMB)
    assert read.scopes == frozenset({"a", "b"})


def test_a_minted_token_says_what_the_resource_server_reads() -> None:
    token, seconds = tokens.mint(
        key=KEY, alg="ES256", issuer=ISSUER, client_id="c", audience=ISSUER,
        scopes=frozenset({"b", "a"}), thumbprint=THUMB, jti="j", now=NOW,
        lifetime=timedelta(minutes=5),
    )  # fmt: skip
    decoded = jwt.decode(token, KEY)
    assert seconds == 300
    assert decoded.header == {"typ": "at+jwt", "alg": "ES256", "kid": KEY.kid}
    assert decoded.claims["nbf"] == decoded.claims["iat"] == MOMENT
    assert decoded.claims["scope"] == "a b"
