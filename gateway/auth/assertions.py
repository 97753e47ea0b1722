"""Client assertions (RFC 7523 private_key_jwt, and the iSHARE profile). Pure.

FAPI 2.0 (``private_key_jwt``): signed with a key the client registered (ES256, PS256,
Ed25519/EdDSA); ``iss`` = ``sub`` = the client id; ``aud`` = the issuer identifier and
nothing else; ``exp`` at most 5 minutes after the earlier of ``iat`` and now; ``jti``
present (the caller makes sure each is used once, keeping it as long as
gateway/auth/windows.py says the assertion could be accepted).

iSHARE: RS256, signed with the key of the certificate in ``x5c``, whose chain must reach a
trusted root and pass the CRL check, and which must name the client's party id; ``aud`` =
the server's party id; ``exp`` at most 30 s after the earlier of ``iat`` and now; ``iat``
required.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from certs import CertificateRejected, TrustStore, party_ids, verify_signing_chain
from gateway.auth.jose import (
    FAPI_ASSERTION_ALGS,
    ISHARE_ASSERTION_ALGS,
    JoseInputError,
    Key,
    decode,
    key_from_public,
    peek,
)
from gateway.auth.windows import (
    ASSERTION_LEEWAY,
    FAPI_MAX_LIFETIME,
    ISHARE_MAX_LIFETIME,
    is_expired,
)

LEEWAY = ASSERTION_LEEWAY  # the old name, kept for importers
X5C_MAX_HEADER = 16 * 1024


class AssertionRejected(Exception):
    """A client assertion was refused (OAuth ``invalid_client``)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """A valid assertion; its ``jti`` must still be spent exactly once."""

    client_id: str
    jti: str
    expires_at: int
    certificate_sha256: bytes | None = None  # iSHARE: the x5c leaf's SHA-256 (DER)


def verify_private_key_jwt(
    assertion: str, *, client_id: str, keys: KeySet, issuer: str, now: datetime
) -> VerifiedAssertion:
    """Check a FAPI 2.0 ``private_key_jwt`` assertion (see the module docstring)."""
    header, _ = _peek(assertion)
    alg = header.get("alg")
    if alg not in FAPI_ASSERTION_ALGS:
        raise AssertionRejected("algorithm-not-allowed", f"alg {alg!r} is not accepted")
    key = _registered_key(keys, header.get("kid"))
    claims = _verified_claims(assertion, key, FAPI_ASSERTION_ALGS)
    _check_audience(claims, issuer, "the issuer identifier")
    return _check_claims(claims, client_id, now, FAPI_MAX_LIFETIME, require_iat=False)


def verify_ishare(
    assertion: str,
    *,
    client_id: str,
    server_party_id: str,
    trust: TrustStore,
    crls: Sequence[x509.CertificateRevocationList],
    now: datetime,
) -> VerifiedAssertion:
    """Check an iSHARE client assertion (see the module docstring)."""
    header, _ = _peek(assertion)
    if header.get("alg") not in ISHARE_ASSERTION_ALGS:
        raise AssertionRejected("algorithm-not-allowed", "iSHARE assertions are RS256")
    chain = _x5c(header.get("x5c"))
    try:
        leaf = verify_signing_chain(chain, trust, crls, now=now)
    except CertificateRejected as exc:
        raise AssertionRejected(f"certificate-{exc.code}", exc.detail) from exc
    if client_id not in party_ids(leaf):
        raise AssertionRejected("wrong-party", "the x5c certificate names another party")
    key = key_from_public(leaf.public_key())  # type: ignore[arg-type]  # checked by the path rules
    claims = _verified_claims(assertion, key, ISHARE_ASSERTION_ALGS, max_header=X5C_MAX_HEADER)
    _check_audience(claims, server_party_id, "the server's party id")
    verified = _check_claims(claims, client_id, now, ISHARE_MAX_LIFETIME, require_iat=True)
    return replace(verified, certificate_sha256=leaf.fingerprint(hashes.SHA256()))


def _peek(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return peek(assertion)
    except JoseInputError as exc:
        raise AssertionRejected("malformed", str(exc)) from exc


def _registered_key(keys: KeySet, kid: object) -> Key:
    candidates = [k for k in keys.keys if kid is None or k.kid == kid]
    if kid is None and len(candidates) != 1:
        raise AssertionRejected(
            "unknown-key", "the assertion names no kid and the client has several keys"
        )
    if not candidates:
        raise AssertionRejected("unknown-key", "the assertion's kid is not a registered key")
    key = candidates[0]
    assert isinstance(key, Key)  # noqa: S101 - client JWKS hold signature keys only
    return key


def _verified_claims(
    assertion: str, key: Key, algorithms: tuple[str, ...], *, max_header: int = 512
) -> dict[str, Any]:
    try:
        return dict(decode(assertion, key, algorithms, max_header=max_header).claims)
    except (JoseError, ValueError) as exc:
        raise AssertionRejected(
            "bad-signature", "the assertion's signature does not verify"
        ) from exc


def _x5c(value: object) -> list[x509.Certificate]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AssertionRejected("missing-x5c", "an iSHARE assertion carries its chain in x5c")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(v, validate=True)) for v in value]
    except (ValueError, binascii.Error) as exc:
        raise AssertionRejected(
            "malformed", "x5c holds something that is not a certificate"
        ) from exc


def _check_audience(claims: dict[str, Any], expected: str, what: str) -> None:
    aud = claims.get("aud")
    if aud not in (expected, [expected]):
        raise AssertionRejected("wrong-audience", f"aud must be {what} only")


def _check_claims(
    claims: dict[str, Any], client_id: str, now: datetime, max_lifetime: int, *, require_iat: bool
) -> VerifiedAssertion:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRejected("wrong-client", "iss and sub must both be the client id")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 128:  # noqa: PLR2004 - storage width
        raise AssertionRejected("missing-jti", "the assertion needs a jti of at most 128 chars")
    moment = int(now.timestamp())
    exp = _time(claims, "exp", required=True)
    iat = _time(claims, "iat", required=require_iat)
    nbf = _time(claims, "nbf", required=False)
    assert exp is not None  # noqa: S101 - required above
    if is_expired(exp, now, ASSERTION_LEEWAY):
        raise AssertionRejected("expired", "the assertion has expired")
    start = moment if iat is None else iat
    if start > moment + ASSERTION_LEEWAY or (nbf is not None and nbf > moment + ASSERTION_LEEWAY):
        raise AssertionRejected("not-yet-valid", "the assertion is issued in the future")
    if exp - min(start, moment) > max_lifetime:  # an iat in the future buys no extra life
        raise AssertionRejected("too-long-lived", f"assertions may live {max_lifetime} s at most")
    return VerifiedAssertion(client_id=client_id, jti=jti, expires_at=exp)


def _time(claims: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise AssertionRejected("malformed", f"{name} must be a NumericDate integer")
    return value
