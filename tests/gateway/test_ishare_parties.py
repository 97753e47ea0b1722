"""The satellite's parties_token, checked without IO: every way it can be wrong."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jwt

from certs import TrustStore
from gateway.oauth.parties import PartyRefused, SatelliteTrust, admit, verify_parties_token
from tests.support.ishare import IShareCA, IShareParty

SATELLITE_ID = "EU.EORI.NL000000050"
OWN = "EU.EORI.NL000000099"
PARTY = "EU.EORI.NL000000002"
NOW = datetime.now(UTC).replace(microsecond=0)
NAIVE = {"status": "Active", "start_date": "2020-01-01T00:00:00", "end_date": "2999-01-01T00:00:00"}


@pytest.fixture(scope="module")
def ca() -> IShareCA:
    return IShareCA()


@pytest.fixture(scope="module")
def satellite(ca: IShareCA) -> IShareParty:
    return ca.party(SATELLITE_ID)


def _trust(ca: IShareCA) -> SatelliteTrust:
    pem = ca.cert.public_bytes(serialization.Encoding.PEM)
    return SatelliteTrust(SATELLITE_ID, OWN, TrustStore.from_pem(pem))


def _crls(ca: IShareCA) -> list[x509.CertificateRevocationList]:
    return [x509.load_pem_x509_crl(ca.crl_pem())]


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "party_id": PARTY,
        "adherence": {
            "status": "Active",
            "start_date": (NOW - timedelta(days=1)).isoformat(),
            "end_date": (NOW + timedelta(days=1)).isoformat(),
        },
    }
    entry.update(changes)
    return entry


def _token(signer: IShareParty, data: list[Any], **changes: Any) -> str:
    issued = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": SATELLITE_ID, "sub": SATELLITE_ID, "aud": OWN, "jti": "x",
        "iat": issued, "exp": issued + 30,
        "parties_info": {"count": len(data), "data": data},
    }  # fmt: skip
    claims.update(changes)
    x5c = [
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in signer.chain
    ]
    return jwt.encode({"alg": "RS256", "x5c": x5c}, claims, signer.key, algorithms=["RS256"])


def _verify(ca: IShareCA, token: str) -> object:
    return verify_parties_token(token, PARTY, _trust(ca), _crls(ca), now=NOW)


def test_an_active_party_with_its_certificate_listed_is_admitted(
    ca: IShareCA, satellite: IShareParty
) -> None:
    leaf = ca.party(PARTY).chain[0]
    digest = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).digest()
    hexed = {"x5t#s256": digest.hex().upper()}
    b64url = {"x5t#s256": base64.urlsafe_b64encode(digest).decode().rstrip("=")}
    for listed in (hexed, b64url):
        record = verify_parties_token(
            _token(satellite, [_entry(certificates=[listed])]),
            PARTY,
            _trust(ca),
            _crls(ca),
            now=NOW,
        )
        admit(record, PARTY, now=NOW, certificate=digest)  # type: ignore[arg-type]
    with pytest.raises(PartyRefused, match="certificate-not-registered"):
        admit(record, PARTY, now=NOW, certificate=b"\0" * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "start", "end", "code"),
    [
        ("NotActive", -1, 1, "party-not-active"),
        ("Active", 1, 2, "party-not-active"),  # not yet
        ("Active", -2, -1, "party-not-active"),  # ended
        ("Active", -1, 0, "party-not-active"),  # end_date is exclusive
    ],
)
def test_adherence_outside_active_and_its_dates_is_refused(  # noqa: PLR0917 - pytest params
    ca: IShareCA, satellite: IShareParty, status: str, start: int, end: int, code: str
) -> None:
    adherence = {
        "status": status,
        "start_date": (NOW + timedelta(days=start)).isoformat(),
        "end_date": (NOW + timedelta(days=end)).isoformat(),
    }
    record = _verify(ca, _token(satellite, [_entry(adherence=adherence)]))
    with pytest.raises(PartyRefused) as refused:
        admit(record, PARTY, now=NOW)  # type: ignore[arg-type]
    assert refused.value.code == code
    assert not refused.value.unavailable


def test_an_unlisted_party_is_unknown(ca: IShareCA, satellite: IShareParty) -> None:
    record = _verify(ca, _token(satellite, [_entry(party_id="EU.EORI.NL000000003")]))
    assert record is None
    with pytest.raises(PartyRefused, match="party-unknown"):
        admit(None, PARTY, now=NOW)


@pytest.mark.parametrize(
    ("changes", "data", "message"),
    [
        ({"iss": OWN}, None, "iss and sub"),
        ({"aud": [OWN, "EU.EORI.NL000000777"]}, None, "aud"),
        ({"exp": int(NOW.timestamp()) + 300}, None, "30 s at most"),
        ({"iat": int(NOW.timestamp()) + 120, "exp": int(NOW.timestamp()) + 130}, None, "future"),
        ({"exp": int(NOW.timestamp()) - 31}, None, "expired"),
        ({"iat": "now"}, None, "NumericDate"),
        ({}, [_entry(), _entry()], "more than once"),
        ({}, [_entry(adherence=NAIVE)], "time zone"),
        ({}, [_entry(adherence={"status": "Active"})], "start_date and end_date"),
        ({}, [_entry(certificates="MII")], "list of objects"),
        ({}, [_entry(certificates=[{"subject_name": "x"}])], "neither x5c"),
        ({}, ["party"], "list of parties"),
    ],
)
def test_a_bad_parties_token_is_the_satellites_fault(
    ca: IShareCA,
    satellite: IShareParty,
    changes: dict[str, Any],
    data: list[Any] | None,
    message: str,
) -> None:
    token = _token(satellite, [_entry()] if data is None else data, **changes)
    with pytest.raises(PartyRefused, match=message) as refused:
        _verify(ca, token)
    assert refused.value.unavailable


def test_a_token_signed_by_another_party_or_ca_is_refused(ca: IShareCA) -> None:
    for signer, message in (
        (ca.party("EU.EORI.NL000000003"), "another party"),
        (IShareCA("Impostor").party(SATELLITE_ID), "certificate"),
    ):
        with pytest.raises(PartyRefused, match=message):
            _verify(ca, _token(signer, [_entry()]))
    with pytest.raises(PartyRefused, match="not a JWS"):
        _verify(ca, "not.a-token")
