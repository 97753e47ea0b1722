"""An iSHARE satellite's answer about a party: the signed ``parties_token``, checked. Pure.

A satellite answers ``GET /parties?eori=<id>`` with ``{"parties_token": <JWT>}``: RS256,
signed with the key of the certificate in ``x5c`` (leaf first), whose chain must reach a
root in the iSHARE trust bundle, pass the CRL check and name the satellite's party id;
``iss`` = ``sub`` = the satellite's party id; ``aud`` = our party id; ``iat`` and ``exp``
required, ``exp`` at most 30 s after ``iat``. ``parties_info.data`` lists the matching
parties; the one with our party id is admitted only when its ``adherence.status`` is
``Active`` and ``now`` lies within its ``start_date``/``end_date``.

Errors: :class:`PartyRefused` with a stable ``code``; ``unavailable`` says whether the
fault is the satellite's (the gateway answers 503, fail closed) or the party's (refused).
``now`` is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from joserfc.errors import JoseError

from certs import CertificateRejected, TrustStore, party_ids, verify_signing_chain
from gateway.auth.jose import ISHARE_ASSERTION_ALGS, JoseInputError, decode, key_from_public, peek
from gateway.auth.windows import ASSERTION_LEEWAY, ISHARE_MAX_LIFETIME, is_expired

X5C_MAX_HEADER = 16 * 1024
ACTIVE = "Active"
SHA256_HEX = 64


class PartyRefused(Exception):
    """A party was not admitted; ``unavailable`` when the satellite, not the party, failed."""

    def __init__(self, code: str, detail: str, *, unavailable: bool) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.unavailable = unavailable


def _invalid(detail: str) -> PartyRefused:
    return PartyRefused("satellite-invalid", detail, unavailable=True)


@dataclass(frozen=True, slots=True)
class Adherence:
    """A party's iSHARE adherence, as the satellite signed it."""

    status: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PartyRecord:
    """One party as a verified ``parties_token`` describes it."""

    party_id: str
    adherence: Adherence
    certificates: frozenset[bytes]  # SHA-256 digests (DER) of the party's listed certificates


@dataclass(frozen=True, slots=True)
class SatelliteTrust:
    """Who the satellite is, who we are, and the roots its certificate must reach."""

    satellite_id: str
    own_party_id: str
    trust: TrustStore


def verify_parties_token(
    token: str,
    party_id: str,
    satellite: SatelliteTrust,
    crls: Sequence[x509.CertificateRevocationList],
    *,
    now: datetime,
) -> PartyRecord | None:
    """``party_id``'s record in a verified ``parties_token``; None if it lists no such party."""
    claims = _verified_claims(token, satellite, crls, now)
    if claims.get("iss") != satellite.satellite_id or claims.get("sub") != satellite.satellite_id:
        raise _invalid("iss and sub of the parties_token must be the satellite's party id")
    if claims.get("aud") not in (satellite.own_party_id, [satellite.own_party_id]):
        raise _invalid("the parties_token is not addressed to this gateway (aud)")
    _check_times(claims, now)
    return _find(claims.get("parties_info"), party_id)


def admit(
    record: PartyRecord | None,
    party_id: str,
    *,
    now: datetime,
    certificate: bytes | None = None,
) -> None:
    """PartyRefused unless ``record`` shows an Active adherence at ``now`` and, when
    ``certificate`` (a SHA-256 digest) is given, lists that certificate for the party."""
    if record is None:
        raise PartyRefused(
            "party-unknown", f"the satellite knows no party {party_id}", unavailable=False
        )
    adherence = record.adherence
    if adherence.status != ACTIVE:
        raise PartyRefused(
            "party-not-active",
            f"party {party_id} is {adherence.status!r} at the satellite, not Active",
            unavailable=False,
        )
    if not adherence.start <= now < adherence.end:
        raise PartyRefused(
            "party-not-active",
            f"party {party_id}'s adherence runs {adherence.start.isoformat()} to "
            f"{adherence.end.isoformat()}",
            unavailable=False,
        )
    if certificate is not None and certificate not in record.certificates:
        raise PartyRefused(
            "certificate-not-registered",
            f"the satellite lists no such signing certificate for party {party_id}",
            unavailable=False,
        )


def _verified_claims(
    token: str,
    satellite: SatelliteTrust,
    crls: Sequence[x509.CertificateRevocationList],
    now: datetime,
) -> dict[str, Any]:
    try:
        header, _ = peek(token)
    except JoseInputError as exc:
        raise _invalid(f"the parties_token is not a JWS: {exc}") from exc
    if header.get("alg") not in ISHARE_ASSERTION_ALGS:
        raise _invalid("the parties_token must be RS256")
    chain = _x5c(header.get("x5c"))
    try:
        leaf = verify_signing_chain(chain, satellite.trust, crls, now=now)
    except CertificateRejected as exc:
        raise _invalid(f"the satellite's certificate: {exc.detail}") from exc
    if satellite.satellite_id not in party_ids(leaf):
        raise _invalid("the parties_token is signed by a certificate of another party")
    key = key_from_public(leaf.public_key())  # type: ignore[arg-type]  # checked by the path rules
    try:
        return dict(decode(token, key, ISHARE_ASSERTION_ALGS, max_header=X5C_MAX_HEADER).claims)
    except (JoseError, ValueError) as exc:
        raise _invalid("the parties_token's signature does not verify") from exc


def _x5c(value: object) -> list[x509.Certificate]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _invalid("the parties_token carries no x5c chain")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(v, validate=True)) for v in value]
    except (ValueError, binascii.Error) as exc:
        raise _invalid("x5c holds something that is not a certificate") from exc


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    iat, exp = _numeric(claims.get("iat")), _numeric(claims.get("exp"))
    if is_expired(exp, now, ASSERTION_LEEWAY):
        raise _invalid("the parties_token has expired")
    if iat > int(now.timestamp()) + ASSERTION_LEEWAY:
        raise _invalid("the parties_token is issued in the future")
    if exp - iat > ISHARE_MAX_LIFETIME:
        raise _invalid(f"the parties_token may live {ISHARE_MAX_LIFETIME} s at most")


def _numeric(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid("iat and exp of the parties_token must be NumericDate integers")
    return value


def _find(info: object, party_id: str) -> PartyRecord | None:
    data = info.get("data") if isinstance(info, dict) else None
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        raise _invalid("parties_info.data must be a list of parties")
    matches = [p for p in data if p.get("party_id") == party_id]
    if len(matches) > 1:
        raise _invalid(f"the satellite lists party {party_id} more than once")
    if not matches:
        return None
    party = matches[0]
    return PartyRecord(
        party_id, _adherence(party.get("adherence")), _certificates(party.get("certificates"))
    )


def _certificates(value: object) -> frozenset[bytes]:
    """The digests of the listed certificates (by ``x5c``, else ``x5t#s256``); none: empty."""
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise _invalid("a party's certificates must be a list of objects")
    return frozenset(_digest(c) for c in value)


def _digest(entry: dict[str, Any]) -> bytes:
    der, thumb = entry.get("x5c"), entry.get("x5t#s256")
    try:
        if isinstance(der, str):
            return hashlib.sha256(base64.b64decode(der, validate=True)).digest()
        if isinstance(thumb, str) and len(thumb) == SHA256_HEX:
            return bytes.fromhex(thumb)
        if isinstance(thumb, str):
            return base64.urlsafe_b64decode(thumb + "=" * (-len(thumb) % 4))
    except (ValueError, binascii.Error) as exc:
        raise _invalid("a listed certificate is not base64 or hex") from exc
    raise _invalid("a listed certificate has neither x5c nor x5t#s256")


def _adherence(value: object) -> Adherence:
    if not isinstance(value, dict) or not isinstance(value.get("status"), str):
        raise _invalid("a party without an adherence status")
    return Adherence(value["status"], _date(value.get("start_date")), _date(value.get("end_date")))


def _date(value: object) -> datetime:
    if not isinstance(value, str):
        raise _invalid("adherence start_date and end_date are required")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _invalid(f"adherence date {value[:40]!r} is not ISO 8601") from exc
    if moment.tzinfo is None:
        raise _invalid("adherence dates need a time zone")
    return moment
