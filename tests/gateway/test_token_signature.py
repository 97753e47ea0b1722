"""jose.verify_signature: the signature check on a token read once (issue 10).

``tokens.check`` no longer hands the token to ``joserfc.jwt.decode`` (which splits, decodes
and parses it a second time): it verifies with joserfc's registry and algorithm objects on
the segments :func:`~gateway.auth.jose.peek` read, and checks the claims ``peek`` parsed
from the signed payload. Each strictness ``jwt.decode`` had is asserted here, on the
function and through ``tokens.check``; base64url is now strict in ``peek`` as well.
"""

from __future__ import annotations

import base64
import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from gateway.auth import jose, tokens
from gateway.auth.jose import (
    OWN_TOKEN_ALGS,
    JoseInputError,
    import_private,
    import_public,
    peek,
    public_jwk,
    verify_signature,
)
from gateway.auth.tokens import TokenRejected, TrustedIssuer

ISSUER = "https://gateway.example"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
THUMB = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
EC_KEY = import_private(ec.generate_private_key(ec.SECP256R1()))
ED_KEY = import_private(ed25519.Ed25519PrivateKey.generate())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mint(key: Any, alg: str, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "key": key, "alg": alg, "issuer": ISSUER, "client_id": "NTRNL-40000001",
        "audience": ISSUER, "scopes": frozenset({"dataset:a"}), "thumbprint": THUMB,
        "jti": "jti-1", "now": NOW, "lifetime": timedelta(minutes=5),
    }  # fmt: skip
    values.update(overrides)
    return tokens.mint(**values)[0]


def _issuers(*keys: Any, alg: str = "ES256") -> dict[str, TrustedIssuer]:
    public = [import_public(public_jwk(key, alg)) for key in keys]
    return {ISSUER: TrustedIssuer(ISSUER, KeySet(public), OWN_TOKEN_ALGS)}


def _refusal(token: str, issuers: dict[str, TrustedIssuer]) -> str:
    with pytest.raises(TokenRejected) as refused:
        tokens.check(token, issuers, audience=ISSUER, thumbprint=THUMB, now=NOW)
    return refused.value.code


@pytest.mark.parametrize(("key", "alg"), [(EC_KEY, "ES256"), (ED_KEY, "Ed25519")])
def test_both_own_algorithms_verify(key: Any, alg: str) -> None:
    token = _mint(key, alg)
    claims = tokens.check(token, _issuers(key, alg=alg), audience=ISSUER, thumbprint=THUMB, now=NOW)
    assert (claims.jti, claims.client_id) == ("jti-1", "NTRNL-40000001")


def test_the_checked_claims_are_the_signed_ones() -> None:
    head, _, signature = _mint(EC_KEY, "ES256").split(".")
    forged = _mint(EC_KEY, "ES256", client_id="NTRNL-40000002").split(".")[1]
    assert _refusal(f"{head}.{forged}.{signature}", _issuers(EC_KEY)) == "bad-signature"


def test_an_es256_signature_must_be_raw_r_s_of_64_bytes() -> None:
    head, body, signature = _mint(EC_KEY, "ES256").split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    assert len(raw) == 64
    r, s = int.from_bytes(raw[:32]), int.from_bytes(raw[32:])
    for other in (encode_dss_signature(r, s), raw + b"\0", raw[:-1], b"\0" + raw):
        assert _refusal(f"{head}.{body}.{_b64(other)}", _issuers(EC_KEY)) == "bad-signature"


def test_the_algorithm_comes_from_the_allow_list_and_must_fit_the_key() -> None:
    token = _mint(EC_KEY, "ES256")
    header, _ = peek(token)
    public = import_public(public_jwk(EC_KEY, "ES256"))
    verify_signature(token, public, ("ES256",), header)
    with pytest.raises(JoseError):  # the header names ES256; this list does not
        verify_signature(token, public, ("Ed25519",), header)
    ed_public = import_public(public_jwk(ED_KEY, "Ed25519"))
    with pytest.raises(JoseError):  # ES256 with an Ed25519 key: the key's type refuses
        verify_signature(token, ed_public, OWN_TOKEN_ALGS, header)
    # the same through tokens.check: an ES256 token whose kid names an Ed25519 key
    issuers = _issuers(ED_KEY, alg="Ed25519")
    swapped = jwt.encode(
        {"typ": "at+jwt", "alg": "ES256", "kid": ED_KEY.kid},
        jwt.decode(token, public).claims, EC_KEY, algorithms=["ES256"],
    )  # fmt: skip
    assert _refusal(swapped, issuers) == "bad-signature"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s + "=",  # padding
        lambda s: s.replace("-", "+").replace("_", "/") if ("-" in s or "_" in s) else s + "+",
        lambda s: s[:-1] + "B" if s[-1] == "A" else s[:-1] + "A",  # stray bits (or wrong sig)
    ],
    ids=["padding", "standard-alphabet", "trailing-bits"],
)
def test_a_signature_segment_is_base64url_strictly(mangle: Any) -> None:
    head, body, signature = _mint(EC_KEY, "ES256").split(".")
    assert _refusal(f"{head}.{body}.{mangle(signature)}", _issuers(EC_KEY)) == "bad-signature"


@pytest.mark.parametrize("segment", ["eyJhIjoxfQ=", "eyJhIjoxfQ==", "eyJhIjoxfR", "eyJh+joxfQ"])
def test_a_header_or_payload_is_base64url_strictly(segment: str) -> None:
    # "eyJhIjoxfQ" is {"a":1}; padded, with a non-zero trailing bit, or with "+" it is not
    # read (the lenient decoder before skipped or ignored these; joserfc then refused)
    assert peek("eyJhIjoxfQ.eyJhIjoxfQ.c2ln") == ({"a": 1}, {"a": 1})
    with pytest.raises(JoseInputError):
        peek(f"{segment}.eyJhIjoxfQ.c2ln")
    with pytest.raises(JoseInputError):
        peek(f"eyJhIjoxfQ.{segment}.c2ln")


def test_a_header_over_the_cap_is_refused_before_the_signature() -> None:
    head = {"typ": "at+jwt", "alg": "ES256", "kid": EC_KEY.kid, "x-pad": "p" * 600}
    token = jwt.encode(
        head, {"iss": ISSUER}, EC_KEY, registry=jose.registry(("ES256",), max_header=2048)
    )
    header, _ = peek(token)
    public = import_public(public_jwk(EC_KEY, "ES256"))
    with pytest.raises(JoseError):
        verify_signature(token, public, ("ES256",), header)
    verify_signature(token, public, ("ES256",), header, max_header=2048)


def test_eddsa_by_its_old_name_verifies_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        token = jwt.encode({"alg": "EdDSA"}, {"sub": "x"}, ED_KEY, algorithms=["EdDSA"])
    header, _ = peek(token)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verify_signature(token, ED_KEY, ("EdDSA",), header)


def test_a_rotated_key_under_the_same_kid_is_what_verifies() -> None:
    # the registry is shared per allow-list; keys are never cached: after a rotation that
    # reuses the kid, the old key's tokens fail and the new key's pass, memo or no memo
    old, new = EC_KEY, import_private(ec.generate_private_key(ec.SECP256R1()))
    new_public = import_public({**public_jwk(new, "ES256"), "kid": old.kid})
    rotated = {ISSUER: TrustedIssuer(ISSUER, KeySet([new_public]), OWN_TOKEN_ALGS)}
    old_token = _mint(old, "ES256")
    memo = tokens.VerifiedMemo()
    tokens.check(old_token, _issuers(old), audience=ISSUER, thumbprint=THUMB, now=NOW, memo=memo)
    with pytest.raises(TokenRejected) as refused:
        tokens.check(old_token, rotated, audience=ISSUER, thumbprint=THUMB, now=NOW, memo=memo)
    assert refused.value.code == "bad-signature"
    assert _refusal(old_token, rotated) == "bad-signature"
    new_token = jwt.encode(
        {"typ": "at+jwt", "alg": "ES256", "kid": old.kid},
        json.loads(base64.urlsafe_b64decode(old_token.split(".")[1] + "==")), new,
        algorithms=["ES256"],
    )  # fmt: skip
    claims = tokens.check(new_token, rotated, audience=ISSUER, thumbprint=THUMB, now=NOW)
    assert claims.jti == "jti-1"
    shared = jose._shared_registry
    assert shared(OWN_TOKEN_ALGS, 512) is shared(OWN_TOKEN_ALGS, 512)


def test_a_reading_of_another_token_is_not_used() -> None:
    mine = _mint(EC_KEY, "ES256")
    theirs = _mint(EC_KEY, "ES256", client_id="NTRNL-40000002", jti="jti-2")
    issuers = _issuers(EC_KEY)
    claims = tokens.check(
        mine, issuers, audience=ISSUER, thumbprint=THUMB, now=NOW, peeked=tokens.read(theirs)
    )
    assert (claims.client_id, claims.jti) == ("NTRNL-40000001", "jti-1")
    assert tokens.unverified_issuer(mine, peeked=tokens.read(theirs)) == (ISSUER, EC_KEY.kid)
