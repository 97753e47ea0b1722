"""Client assertions, pure: lifetime caps and the acceptance boundary (injected clock)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from certs import TrustStore, load_crls
from gateway.auth import windows
from gateway.auth.assertions import (
    AssertionRejected,
    VerifiedAssertion,
    verify_ishare,
    verify_private_key_jwt,
)
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


def _ishare(ca: IShareCA, party: IShareParty, client_id: str) -> VerifiedAssertion:
    moment = int(PKI_NOW.timestamp())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": SERVER_PARTY,
        "iat": moment,
        "exp": moment + 30,
        "jti": "i",
    }
    x5c = [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in party.chain]
    token = jwt.encode({"alg": "RS256", "x5c": x5c}, claims, party.key, algorithms=["RS256"])
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
