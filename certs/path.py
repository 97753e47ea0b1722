"""Certification path building: leaf to a trust anchor, depth-first, without loops.

We build paths ourselves because cryptography's webpki ``ClientVerifier`` refuses Ed25519.
Every link is checked while building (signature, issuer profile, validity, path length,
optional intermediate revocation), so a bad candidate is skipped and another may succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certs.errors import CertificateRejected
from certs.extensions import find_extension
from certs.identity import describe
from certs.profile import check_common, check_issuer, check_signature_algorithm
from certs.revocation import check_revocation

MAX_ISSUERS = 4
"""At most this many certificates above the leaf (intermediates plus the anchor)."""

MAX_SIGNATURE_CHECKS = 32
"""Budget of signature checks per search: many same-named certificates cannot make the
search exponential (a client controls the intermediates it offers)."""


@dataclass
class _Search:
    anchors: frozenset[x509.Certificate]
    pool: tuple[x509.Certificate, ...]
    crls: Sequence[x509.CertificateRevocationList]
    now: datetime
    failures: list[CertificateRejected] = field(default_factory=list)
    checks: int = 0


def build_path(
    leaf: x509.Certificate,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    now: datetime,
) -> list[x509.Certificate]:
    """A checked path ``[leaf, ..., anchor]``; raises the first failure met if none exists.

    Candidates are tried anchors first, then known intermediates, then what the client
    offered, so offered decoys cannot use up the search budget before trusted certificates.
    """
    pool = tuple(dict.fromkeys([*anchors, *intermediates]))
    search = _Search(frozenset(anchors), pool, crls, now)
    found = _extend([leaf], search)
    if found is not None:
        return found
    if search.failures:
        raise search.failures[0]
    raise CertificateRejected("untrusted-issuer", f"no trusted issuer found for {describe(leaf)}")


def _extend(path: list[x509.Certificate], search: _Search) -> list[x509.Certificate] | None:
    child = path[-1]
    for candidate in _candidates(child, search.pool):
        if candidate in path:
            continue
        try:
            _check_link(path, candidate, search)
        except CertificateRejected as failure:
            search.failures.append(failure)
            continue
        extended = [*path, candidate]
        if candidate in search.anchors:
            return extended
        if len(extended) > MAX_ISSUERS:
            search.failures.append(
                CertificateRejected(
                    "path-too-long",
                    f"no anchor within {MAX_ISSUERS} issuers of {describe(path[0])}",
                )
            )
            continue
        found = _extend(extended, search)
        if found is not None:
            return found
    return None


def _candidates(
    child: x509.Certificate, pool: tuple[x509.Certificate, ...]
) -> list[x509.Certificate]:
    """Certificates named as ``child``'s issuer whose SKI matches its AKI when both exist."""
    aki = find_extension(child, x509.AuthorityKeyIdentifier)
    wanted = aki.key_identifier if aki is not None else None
    matches = []
    for candidate in pool:
        if candidate.subject != child.issuer:
            continue
        ski = find_extension(candidate, x509.SubjectKeyIdentifier)
        if wanted is not None and ski is not None and ski.digest != wanted:
            continue
        matches.append(candidate)
    return matches


def _check_link(path: list[x509.Certificate], issuer: x509.Certificate, search: _Search) -> None:
    child = path[-1]
    check_signature_algorithm(child)
    search.checks += 1
    if search.checks > MAX_SIGNATURE_CHECKS:
        raise CertificateRejected(
            "path-too-long", f"path search for {describe(path[0])} exceeded its budget"
        )
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise CertificateRejected(
            "bad-signature", f"{describe(child)} is not validly signed by {describe(issuer)}"
        ) from exc
    check_common(issuer, search.now)
    check_issuer(issuer, intermediates_below=len(path) - 1)
    if len(path) > 1:
        check_revocation(child, issuer, search.crls, search.now, required=False)
