"""Client assertions, pure: lifetime caps and the acceptance boundary (injected clock)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from certs import TrustStore, load_crls
from gateway.auth import windows
from gateway.auth.assertions import (
    AssertionRejected,
    VerifiedAssertion,
    verify_ishare,
    verify_private_key_jwt,
)
from gateway.auth.jose import key_from_public
from tests.support.ishare import IShareCA, IShareParty
from tests.support.pki import NOW as PKI_NOW

ISSUER = "https://gateway.example"
CLIENT = "NTRNL-40000002"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MOMENT = int(NOW.timestamp())
MICROSECOND = timedelta(microseconds=1)
KEY = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
KEY.ensure_kid()


def _verify(now: datetime = NOW, **claims: object) -> object:
    values: dict[str, object] = {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "jti": "j"}
    values.update(claims)
    token = jwt.encode({"alg": "ES256", "kid": KEY.kid}, values, KEY)
    public = ECKey.import_key(KEY.as_dict(private=False))
    return verify_private_key_jwt(
        token, client_id=CLIENT, keys=KeySet([public]), issuer=ISSUER, now=now
    )


def _code(now: datetime = NOW, **claims: object) -> str:
    with pytest.raises(AssertionRejected) as refused:
        _verify(now, **claims)
    return refused.value.code


def test_an_iat_in_the_future_buys_no_extra_life() -> None:
    # iat 30 s ahead (allowed skew) and exp 300 s after it: 330 s of life from now.
    assert _code(iat=MOMENT + 30, exp=MOMENT + 330) == "too-long-lived"
    assert _code(iat=MOMENT + 30, exp=MOMENT + 301) == "too-long-lived"
    assert _verify(iat=MOMENT + 30, exp=MOMENT + 300)
    assert _verify(iat=MOMENT - 10, exp=MOMENT + 290)
    assert _code(iat=MOMENT - 10, exp=MOMENT + 291) == "too-long-lived"
    assert _code(exp=MOMENT + 301) == "too-long-lived"  # no iat: counted from now


def test_acceptance_ends_exactly_at_exp_plus_the_leeway() -> None:
    exp = MOMENT + 60
    end = windows.accepted_until(exp, windows.ASSERTION_LEEWAY)
    assert end == datetime.fromtimestamp(exp + 30, UTC)
    assert _verify(end - MICROSECOND, iat=MOMENT, exp=exp)
    assert _code(end, iat=MOMENT, exp=exp) == "expired"


@given(
    exp=st.integers(min_value=0, max_value=4_000_000_000),
    offset=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_no_record_is_purged_while_its_credential_is_accepted(exp: int, offset: int) -> None:
    now = datetime.fromtimestamp(exp, UTC) + timedelta(microseconds=offset)
    stored = datetime.fromtimestamp(exp, UTC)
    for leeway, purge_before in (
        (windows.ASSERTION_LEEWAY, windows.assertion_purge_before),
        (windows.TOKEN_LEEWAY, windows.token_purge_before),
    ):
        if not windows.is_expired(exp, now, leeway):
            assert not stored < purge_before(now)  # the purge keeps it


# --- iSHARE: a namespaced party id and a signing purpose ------------------------------------

SERVER_PARTY = "EU.EORI.NL000000099"
PARTY = "EU.EORI.NL000000002"


@pytest.fixture(scope="module")
def ishare_ca() -> IShareCA:
    return IShareCA()


def _ishare(
    ca: IShareCA,
    party: IShareParty,
    client_id: str,
    header: dict[str, object] | None = None,
    **changed: object,
) -> VerifiedAssertion:
    moment = int(PKI_NOW.timestamp())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": SERVER_PARTY,
        "iat": moment,
        "exp": moment + 30,
        "jti": "i",
    }
    claims.update(changed)
    claims = {k: v for k, v in claims.items() if v is not None}
    x5c = [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in party.chain]
    token = jwt.encode({"alg": "RS256", "x5c": x5c}, claims, party.key, algorithms=["RS256"])
    if header is not None:  # another header on the same payload and signature
        _, payload, signature = token.split(".")
        head = base64.urlsafe_b64encode(json.dumps({"x5c": x5c, **header}).encode())
        token = ".".join((head.decode().rstrip("="), payload, signature))
    return verify_ishare(
        token,
        client_id=client_id,
        server_party_id=SERVER_PARTY,
        trust=TrustStore.from_pem(ca.cert.public_bytes(Encoding.PEM)),
        crls=load_crls(ca.crl_pem()),
        now=PKI_NOW,
    )


def test_an_ishare_party_with_a_signing_certificate_passes(ishare_ca: IShareCA) -> None:
    assert _ishare(ishare_ca, ishare_ca.party(PARTY), PARTY).client_id == PARTY
    email = ishare_ca.party(PARTY, ekus=(ExtendedKeyUsageOID.EMAIL_PROTECTION,))
    assert _ishare(ishare_ca, email, PARTY).client_id == PARTY


@pytest.mark.parametrize(
    "serial", ["NTRNL-40000001", "PNONL-123456789", "NL000000002"], ids=["etsi", "person", "bare"]
)
def test_a_bare_serial_number_names_no_party(ishare_ca: IShareCA, serial: str) -> None:
    with pytest.raises(AssertionRejected) as refused:
        _ishare(ishare_ca, ishare_ca.party(serial), serial)
    assert refused.value.code == "wrong-party"


@pytest.mark.parametrize(
    "ekus",
    [None, (ExtendedKeyUsageOID.SERVER_AUTH,), (ExtendedKeyUsageOID.CODE_SIGNING,),
     (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)],
    ids=["none", "server", "code", "any"],
)  # fmt: skip
def test_a_certificate_without_a_signing_purpose_is_refused(
    ishare_ca: IShareCA, ekus: tuple[x509.ObjectIdentifier, ...] | None
) -> None:
    with pytest.raises(AssertionRejected) as refused:
        _ishare(ishare_ca, ishare_ca.party(PARTY, ekus=ekus), PARTY)
    assert refused.value.code == "certificate-wrong-extended-key-usage"
    assert refused.value.detail  # the certificate check's own words, passed on


# Each refusal of an iSHARE assertion with its stable code (survivors of `make mutate`).
ISHARE_REFUSALS = [
    ({"header": {"alg": "ES256"}}, "algorithm-not-allowed"),
    ({"header": {"alg": "HS256"}}, "algorithm-not-allowed"),
    ({"header": {"alg": "RS256", "x5c": []}}, "missing-x5c"),
    ({"header": {"alg": "RS256", "x5c": "MII"}}, "missing-x5c"),
    ({"header": {"alg": "RS256", "x5c": ["not base64!"]}}, "malformed"),
    ({"header": {"alg": "RS256", "kid": "x"}}, "bad-signature"),  # the header is signed too
    ({"aud": "EU.EORI.NL000000098"}, "wrong-audience"),
    ({"aud": [SERVER_PARTY, "EU.EORI.NL000000098"]}, "wrong-audience"),
    ({"iss": "EU.EORI.NL000000003"}, "wrong-client"),
    ({"sub": "EU.EORI.NL000000003"}, "wrong-client"),
    ({"jti": None}, "missing-jti"),
    ({"jti": "j" * 129}, "missing-jti"),
    ({"iat": None}, "malformed"),  # iSHARE requires iat
    ({"exp": "soon"}, "malformed"),
    ({"exp": int(PKI_NOW.timestamp()) + 31}, "too-long-lived"),  # 30 s at most
    ({"exp": int(PKI_NOW.timestamp()) - 31}, "expired"),
    ({"iat": int(PKI_NOW.timestamp()) + 31}, "not-yet-valid"),
]


@pytest.mark.parametrize(("change", "code"), ISHARE_REFUSALS)
def test_an_ishare_assertion_is_refused_with_its_code(
    ishare_ca: IShareCA, change: dict[str, object], code: str
) -> None:
    party = ishare_ca.party(PARTY)
    change = dict(change)  # the parameter itself stays as listed
    header = change.pop("header", None)
    with pytest.raises(AssertionRejected) as refused:
        _ishare(ishare_ca, party, PARTY, header, **change)  # type: ignore[arg-type]
    assert (refused.value.code, bool(refused.value.detail)) == (code, True)
    if code == "algorithm-not-allowed":
        assert refused.value.detail == "iSHARE assertions are RS256"


def test_an_ishare_assertion_may_name_the_audience_in_a_list(ishare_ca: IShareCA) -> None:
    assert _ishare(ishare_ca, ishare_ca.party(PARTY), PARTY, aud=[SERVER_PARTY]).jti == "i"


@pytest.mark.parametrize(
    "private",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(65537, 2048),
    ],
    ids=["ec", "ed25519", "rsa"],
)
def test_a_certificates_public_key_becomes_the_same_jose_key(private: Any) -> None:
    """Every key type a certificate may carry (a survivor of `make mutate`: EC and Ed25519)."""
    public = private.public_key()
    key = key_from_public(public)
    assert key.as_dict(private=False) == key_from_private(private).as_dict(private=False)


def key_from_private(private: Any) -> Any:
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return OKPKey.import_key(private)
    return (RSAKey if isinstance(private, rsa.RSAPrivateKey) else ECKey).import_key(private)
