"""Pure certificate issuance: keys and certificates in, certificates out, ``now`` passed in.

Hierarchy: a root CA (pathlen 1) signs one issuing CA (pathlen 0), which signs participant
(clientAuth) and server (serverAuth) certificates and the CRL. Serial numbers are random.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.crl import RevokedEntry, create_crl
from certs.csr import public_key_from_csr
from certs.errors import PKIError
from certs.extensions import authority_key_id, is_key_of
from certs.identity import ORGANIZATION_IDENTIFIER_OID, ROLES, participant_uri
from certs.keys import PrivateKey, PublicKey, generate_key, require_strong, signing_hash

__all__ = [
    "BACKDATE",
    "RevokedEntry",
    "certificate_from_csr",
    "create_crl",
    "create_issuing_ca",
    "create_root_ca",
    "generate_key",
    "issue_participant",
    "issue_server",
    "public_key_from_csr",
]

BACKDATE = timedelta(minutes=5)
"""``notBefore`` is set this far before ``now`` to tolerate clock skew between hosts."""

_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_EE_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def create_root_ca(
    *, common_name: str, key: PrivateKey, now: datetime, days: int = 3650
) -> x509.Certificate:
    """A self-signed root CA certificate (pathlen 1, keyCertSign + cRLSign)."""
    name = _name([(NameOID.COMMON_NAME, common_name)])
    builder = _ca_builder(name, name, key.public_key(), now, days, path_length=1)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
    )
    return builder.sign(key, signing_hash(key))


def create_issuing_ca(
    *,
    common_name: str,
    key_public: PublicKey,
    root: x509.Certificate,
    root_key: PrivateKey,
    now: datetime,
    days: int = 1825,
) -> x509.Certificate:
    """An issuing CA signed by ``root`` (pathlen 0): it may sign end-entities only."""
    require_strong(key_public)
    name = _name([(NameOID.COMMON_NAME, common_name)])
    builder = _ca_builder(name, root.subject, key_public, now, days, path_length=0, issuer=root)
    return _sign(builder, root, root_key)


def issue_participant(
    *,
    organization_id: str,
    organization_name: str,
    roles: Collection[str],
    public_key: PublicKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    now: datetime,
    days: int = 365,
) -> x509.Certificate:
    """A participant (clientAuth) certificate binding ``public_key`` to an organisation.

    Subject ``O``, ``organizationIdentifier``, one ``OU`` per role, ``CN``; SAN URI
    :func:`~certs.identity.participant_uri`. PKIError ``unknown-role`` for roles outside
    :data:`~certs.identity.ROLES` (or none), ``invalid-organization-identifier``, ``weak-key``.
    """
    uri = participant_uri(organization_id)
    wanted = sorted(set(roles))
    unknown = [r for r in wanted if r not in ROLES]
    if unknown or not wanted:
        raise PKIError("unknown-role", f"roles must be a non-empty subset of {sorted(ROLES)}")
    if not organization_name.strip():
        raise PKIError("invalid-organization-name", "organisation name must not be empty")
    attributes = [(NameOID.ORGANIZATION_NAME, organization_name)]
    attributes.append((ORGANIZATION_IDENTIFIER_OID, organization_id))
    attributes += [(NameOID.ORGANIZATIONAL_UNIT_NAME, role) for role in wanted]
    attributes.append((NameOID.COMMON_NAME, organization_name))
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)])
    builder = _ee_builder(_name(attributes), public_key, issuer, now, days)
    builder = builder.add_extension(san, critical=False)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    return _sign(builder, issuer, issuer_key)


def issue_server(
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    public_key: PublicKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    now: datetime,
    days: int = 365,
) -> x509.Certificate:
    """A TLS server (serverAuth) certificate for the gateway's DNS names and IP addresses."""
    try:
        ips = [ipaddress.ip_address(ip) for ip in ip_addresses]
    except ValueError as exc:
        raise PKIError("invalid-ip-address", str(exc)) from exc
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ip) for ip in ips]
    if not names:
        raise PKIError("invalid-server-name", "a server certificate needs a DNS name or IP")
    subject = _name([(NameOID.COMMON_NAME, dns_names[0] if dns_names else str(ips[0]))])
    builder = _ee_builder(subject, public_key, issuer, now, days)
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
    )
    return _sign(builder, issuer, issuer_key)


def certificate_from_csr(
    csr: x509.CertificateSigningRequest,
    *,
    organization_id: str,
    organization_name: str,
    roles: Collection[str],
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    now: datetime,
    days: int = 365,
) -> x509.Certificate:
    """:func:`issue_participant` for the key in ``csr`` (see :func:`public_key_from_csr`)."""
    return issue_participant(
        organization_id=organization_id,
        organization_name=organization_name,
        roles=roles,
        public_key=public_key_from_csr(csr),
        issuer=issuer,
        issuer_key=issuer_key,
        now=now,
        days=days,
    )


def _name(attributes: Sequence[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    try:
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    except ValueError as exc:
        raise PKIError("invalid-name", str(exc)) from exc


def _validity(
    builder: x509.CertificateBuilder, now: datetime, days: int, issuer: x509.Certificate | None
) -> x509.CertificateBuilder:
    if days < 1:
        raise PKIError("invalid-validity", "validity must be at least one day")
    not_after = now + timedelta(days=days)
    if issuer is not None:
        not_after = min(not_after, issuer.not_valid_after_utc)
    return builder.not_valid_before(now - BACKDATE).not_valid_after(not_after)


def _base(  # noqa: PLR0917 -- private helper; every call site passes all six
    subject: x509.Name,
    issuer_name: x509.Name,
    public_key: PublicKey,
    now: datetime,
    days: int,
    issuer: x509.Certificate | None,
) -> x509.CertificateBuilder:
    builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
    builder = builder.public_key(public_key).serial_number(x509.random_serial_number())
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    )
    return _validity(builder, now, days, issuer)


def _ca_builder(
    subject: x509.Name,
    issuer_name: x509.Name,
    public_key: PublicKey,
    now: datetime,
    days: int,
    *,
    path_length: int,
    issuer: x509.Certificate | None = None,
) -> x509.CertificateBuilder:
    builder = _base(subject, issuer_name, public_key, now, days, issuer)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    )
    return builder.add_extension(_CA_KEY_USAGE, critical=True)


def _ee_builder(
    subject: x509.Name, public_key: PublicKey, issuer: x509.Certificate, now: datetime, days: int
) -> x509.CertificateBuilder:
    require_strong(public_key)
    builder = _base(subject, issuer.subject, public_key, now, days, issuer)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    return builder.add_extension(_EE_KEY_USAGE, critical=True)


def _sign(
    builder: x509.CertificateBuilder, issuer: x509.Certificate, issuer_key: PrivateKey
) -> x509.Certificate:
    if not is_key_of(issuer, issuer_key.public_key()):
        raise PKIError("key-mismatch", "the issuer key does not belong to the issuer certificate")
    builder = builder.add_extension(authority_key_id(issuer), critical=False)
    return builder.sign(issuer_key, signing_hash(issuer_key))
