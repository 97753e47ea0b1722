"""Every client-assertion refusal by its code and exact words, FAPI and iSHARE; pure.

Mutation testing (docs/testing.md) found the FAPI ``private_key_jwt`` path reached only
through the OAuth endpoints: which registered key an assertion names (``kid``), a future
``nbf``, a missing ``exp``, the ``jti`` width at its boundary and each refusal's sentence
went undefended here. ``tests/gateway/test_assertions.py`` holds the lifetime rules.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from gateway.auth import windows
from gateway.auth.assertions import AssertionRejected, VerifiedAssertion, verify_private_key_jwt
from tests.gateway.test_assertions import ISHARE_REFUSALS, PARTY, SERVER_PARTY, _ishare
from tests.support.ishare import IShareCA

ISSUER = "https://gateway.example"
CLIENT = "NTRNL-40000002"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MOMENT = int(NOW.timestamp())


def _key(kid: str) -> ECKey:
    key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    key.ensure_kid()
    return ECKey.import_key({**key.as_dict(private=True), "kid": kid})


FIRST, SECOND = _key("first"), _key("second")


def _public(*keys: ECKey) -> KeySet:
    return KeySet([ECKey.import_key(k.as_dict(private=False)) for k in keys])


def _assertion(key: ECKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    values = {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "jti": "j", "exp": MOMENT + 60}
    values.update(claims)
    values = {k: v for k, v in values.items() if v is not None}
    return jwt.encode({"alg": "ES256", **header}, values, key)


def _fapi(
    key: ECKey = FIRST,
    keys: KeySet | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> VerifiedAssertion:
    token = _assertion(key, {"kid": key.kid} if header is None else header, claims)
    registered = _public(FIRST) if keys is None else keys
    return verify_private_key_jwt(token, client_id=CLIENT, keys=registered, issuer=ISSUER, now=NOW)


def _refused(**kwargs: Any) -> tuple[str, str]:
    with pytest.raises(AssertionRejected) as refused:
        _fapi(**kwargs)
    assert str(refused.value) == f"{refused.value.code}: {refused.value.detail}"
    return refused.value.code, refused.value.detail


def _forged_header(header: dict[str, Any]) -> str:
    """A token whose header says ``header`` (signature not over it: refused before that)."""
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    _, payload, signature = _assertion(FIRST, {}, {}).split(".")
    return ".".join((head, payload, signature))


def test_a_valid_assertion_gives_its_client_jti_and_expiry() -> None:
    assert _fapi(exp=MOMENT + 61, jti="x" * 128) == VerifiedAssertion(
        CLIENT, "x" * 128, MOMENT + 61
    )


@pytest.mark.parametrize("alg", ["HS256", "RS256", "none", None])
def test_an_algorithm_outside_the_fapi_list_is_refused_by_name(alg: str | None) -> None:
    header = {"kid": "first"} if alg is None else {"alg": alg, "kid": "first"}
    token = _forged_header(header)
    with pytest.raises(AssertionRejected) as refused:
        verify_private_key_jwt(token, client_id=CLIENT, keys=_public(FIRST), issuer=ISSUER, now=NOW)
    assert (refused.value.code, refused.value.detail) == (
        "algorithm-not-allowed",
        f"alg {alg!r} is not accepted",
    )


def test_the_kid_picks_the_registered_key() -> None:
    both = _public(FIRST, SECOND)
    assert _fapi(SECOND, both).client_id == CLIENT  # the second key, named by its kid
    assert _fapi(FIRST, both).client_id == CLIENT
    assert _fapi(FIRST, _public(FIRST), header={}).client_id == CLIENT  # one key: no kid needed
    assert _refused(key=FIRST, keys=both, header={}) == (
        "unknown-key",
        "the assertion names no kid and the client has several keys",
    )
    assert _refused(key=FIRST, keys=both, header={"kid": "third"}) == (
        "unknown-key",
        "the assertion's kid is not a registered key",
    )
    assert _refused(key=FIRST, keys=KeySet([]), header={}) == (
        "unknown-key",
        "the assertion names no kid and the client has several keys",
    )


def test_a_signature_by_another_key_under_a_registered_kid_is_refused() -> None:
    assert _refused(key=SECOND, keys=_public(FIRST), header={"kid": "first"}) == (
        "bad-signature",
        "the assertion's signature does not verify",
    )


@pytest.mark.parametrize(
    ("claims", "code", "detail"),
    [
        (
            {"aud": "https://elsewhere.example"},
            "wrong-audience",
            "aud must be the issuer identifier only",
        ),
        ({"aud": [ISSUER, "x"]}, "wrong-audience", "aud must be the issuer identifier only"),
        ({"iss": "other"}, "wrong-client", "iss and sub must both be the client id"),
        ({"sub": None}, "wrong-client", "iss and sub must both be the client id"),
        ({"jti": None}, "missing-jti", "the assertion needs a jti of at most 128 chars"),
        ({"jti": ""}, "missing-jti", "the assertion needs a jti of at most 128 chars"),
        ({"jti": 7}, "missing-jti", "the assertion needs a jti of at most 128 chars"),
        ({"jti": "j" * 129}, "missing-jti", "the assertion needs a jti of at most 128 chars"),
        ({"exp": None}, "malformed", "exp must be a NumericDate integer"),
        ({"exp": True}, "malformed", "exp must be a NumericDate integer"),
        ({"iat": "now"}, "malformed", "iat must be a NumericDate integer"),
        ({"nbf": 1.5}, "malformed", "nbf must be a NumericDate integer"),
        ({"exp": MOMENT - 30}, "expired", "the assertion has expired"),
        ({"iat": MOMENT + 31}, "not-yet-valid", "the assertion is issued in the future"),
        ({"nbf": MOMENT + 31}, "not-yet-valid", "the assertion is issued in the future"),
        ({"exp": MOMENT + 301}, "too-long-lived", "assertions may live 300 s at most"),
    ],
)
def test_each_fapi_refusal(claims: dict[str, Any], code: str, detail: str) -> None:
    assert _refused(**claims) == (code, detail)


def test_the_boundaries_next_to_the_refusals() -> None:
    assert _fapi(aud=[ISSUER]).jti == "j"
    assert _fapi(nbf=MOMENT + 30).jti == "j"  # within the leeway
    assert _fapi(nbf=MOMENT - 3600).jti == "j"
    assert _fapi(exp=MOMENT - 29).jti == "j"  # expired 29 s ago: within the leeway
    assert _fapi(iat=None).jti == "j"  # FAPI does not require iat


def test_a_token_that_is_not_one_is_malformed() -> None:
    with pytest.raises(AssertionRejected) as refused:
        verify_private_key_jwt("a.b", client_id=CLIENT, keys=_public(FIRST), issuer=ISSUER, now=NOW)
    assert (refused.value.code, refused.value.detail) == ("malformed", "not a compact JWS")


def test_a_retired_key_stays_published_for_a_lifetime_and_the_leeway() -> None:
    lifetime = timedelta(minutes=10)
    until = windows.key_published_until(NOW, lifetime)
    assert until == NOW + lifetime + timedelta(seconds=windows.TOKEN_LEEWAY)
    assert until == NOW + timedelta(seconds=660)


# --- iSHARE: each refusal's sentence ---------------------------------------------------------

ISHARE_DETAILS = {
    "algorithm-not-allowed": "iSHARE assertions are RS256",
    "missing-x5c": "an iSHARE assertion carries its chain in x5c",
    "bad-signature": "the assertion's signature does not verify",
    "wrong-audience": "aud must be the server's party id only",
    "wrong-client": "iss and sub must both be the client id",
    "missing-jti": "the assertion needs a jti of at most 128 chars",
    "too-long-lived": "assertions may live 30 s at most",
    "expired": "the assertion has expired",
    "not-yet-valid": "the assertion is issued in the future",
}


@pytest.fixture(scope="module")
def ishare_ca() -> IShareCA:
    return IShareCA()


@pytest.mark.parametrize(("change", "code"), ISHARE_REFUSALS)
def test_each_ishare_refusal_says_why(
    ishare_ca: IShareCA, change: dict[str, Any], code: str
) -> None:
    change = dict(change)
    header = change.pop("header", None)
    with pytest.raises(AssertionRejected) as refused:
        _ishare(ishare_ca, ishare_ca.party(PARTY), PARTY, header, **change)
    if code == "malformed" and header is not None:
        detail = "x5c holds something that is not a certificate"
    elif code == "malformed":
        detail = f"{next(iter(change))} must be a NumericDate integer"
    else:
        detail = ISHARE_DETAILS[code]
    assert (refused.value.code, refused.value.detail) == (code, detail)


def test_another_partys_certificate_is_refused_by_name(ishare_ca: IShareCA) -> None:
    other = "EU.EORI.NL000000003"
    with pytest.raises(AssertionRejected) as refused:
        _ishare(ishare_ca, ishare_ca.party(other), PARTY)
    assert (refused.value.code, refused.value.detail) == (
        "wrong-party",
        "the x5c certificate names another party",
    )


def test_x5c_is_strict_base64(ishare_ca: IShareCA) -> None:
    """Characters outside the alphabet are refused, not skipped (lenient decoding would
    read the same certificate out of ``MII...!...``)."""
    party = ishare_ca.party(PARTY)
    der = base64.b64encode(party.chain[0].public_bytes(Encoding.DER)).decode()
    for junk in (der[:40] + "!" + der[40:], der[:40] + "\n" + der[40:]):
        with pytest.raises(AssertionRejected) as refused:
            _ishare(ishare_ca, party, PARTY, {"alg": "RS256", "x5c": [junk]})
        assert (refused.value.code, refused.value.detail) == (
            "malformed",
            "x5c holds something that is not a certificate",
        )
    assert _ishare(ishare_ca, party, PARTY, aud=SERVER_PARTY).client_id == PARTY
