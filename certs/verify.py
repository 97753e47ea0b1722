"""Verify a presented client certificate chain and return the participant it speaks for.

Order: leaf profile and identity, then a path to an anchor (see :mod:`certs.path`), then
the leaf's revocation status, which requires a fresh CRL from its issuer. Fail closed:
anything unexpected, including a certificate that does not parse, is a rejection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

from certs.crl import load_crls
from certs.errors import CertificateRejected
from certs.extensions import PARSE_ERRORS
from certs.identity import CertificateIdentity, identity_of
from certs.path import build_path
from certs.profile import check_common, check_leaf
from certs.revocation import check_revocation
from certs.trust import TrustStore, load_pem_chain

__all__ = ["TrustStore", "load_crls", "load_pem_chain", "verify"]


def verify(
    chain: Sequence[x509.Certificate],
    trust: TrustStore,
    crls: Sequence[x509.CertificateRevocationList],
    *,
    now: datetime,
) -> CertificateIdentity:
    """Verify ``chain`` (leaf first, then optional intermediates) at ``now``.

    Raises :class:`~certs.errors.CertificateRejected` with a stable code on any failure.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not chain:
        raise CertificateRejected("no-certificate", "no client certificate was presented")
    try:
        return _verify(chain, trust, crls, now)
    except PARSE_ERRORS as exc:  # lazily parsed fields that turn out to be broken
        raise CertificateRejected("malformed", f"unparseable certificate data: {exc}") from exc


def _verify(
    chain: Sequence[x509.Certificate],
    trust: TrustStore,
    crls: Sequence[x509.CertificateRevocationList],
    now: datetime,
) -> CertificateIdentity:
    leaf = chain[0]
    check_common(leaf, now)
    check_leaf(leaf)
    identity = identity_of(leaf)
    path = build_path(leaf, trust.anchors, [*trust.intermediates, *chain[1:]], crls, now)
    check_revocation(leaf, path[1], crls, now, required=True)
    return identity
