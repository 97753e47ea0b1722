"""Test PKI builders: a proper root -> issuing CA -> participant hierarchy, and a raw
certificate builder for attack certificates the production code would never issue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import (
    ORGANIZATION_IDENTIFIER_OID,
    CertificateIdentity,
    RevokedEntry,
    TrustStore,
    create_crl,
    create_issuing_ca,
    create_root_ca,
    generate_key,
    issue_participant,
    participant_uri,
    verify,
)
from certs.keys import KeyType, PrivateKey

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
ORG_ID = "EU.EORI.NL000000001"
ORG_NAME = "Acme Logistics BV"

Extensions = list[tuple[x509.ExtensionType, bool]]


def name(common_name: str) -> x509.Name:
    """A name with only a CN."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def participant_name(org_id: str = ORG_ID, org_name: str = ORG_NAME) -> x509.Name:
    """The subject a participant certificate carries."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
            x509.NameAttribute(ORGANIZATION_IDENTIFIER_OID, org_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "consumer"),
            x509.NameAttribute(NameOID.COMMON_NAME, org_name),
        ]
    )


def key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    """A KeyUsage with only the named bits (cRLSign follows keyCertSign)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def ca_extensions(public_key: CertificatePublicKeyTypes, path_length: int | None) -> Extensions:
    """What a well-formed CA certificate carries (minus the AKI)."""
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (key_usage(cert_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]


def leaf_extensions(public_key: CertificatePublicKeyTypes, org_id: str = ORG_ID) -> Extensions:
    """What a well-formed participant certificate carries (minus the AKI)."""
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(participant_uri(org_id))]),
            False,
        ),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]


def build_cert(
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    signing_key: CertificateIssuerPrivateKeyTypes,
    extensions: Extensions,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=30),
    aki: bool = True,
) -> x509.Certificate:
    """Any certificate at all, signed by ``signing_key`` (issuer ``None``: self-signed)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    if aki:
        issuer_public = issuer.public_key() if issuer is not None else public_key
        ski = x509.SubjectKeyIdentifier.from_public_key(issuer_public)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm)


@dataclass
class Pki:
    """A root, an issuing CA, and helpers to issue, revoke and verify at :data:`NOW`."""

    key_type: KeyType
    root: x509.Certificate
    root_key: PrivateKey
    issuing: x509.Certificate
    issuing_key: PrivateKey

    @classmethod
    def create(
        cls,
        key_type: KeyType = "ec-p256",
        root_name: str = "Test Root CA",
        issuing_name: str = "Test Issuing CA",
    ) -> Pki:
        """A fresh two-level hierarchy issued one day before :data:`NOW`."""
        root_key, issuing_key = generate_key(key_type), generate_key(key_type)
        then = NOW - timedelta(days=1)
        root = create_root_ca(common_name=root_name, key=root_key, now=then)
        issuing = create_issuing_ca(
            common_name=issuing_name,
            key_public=issuing_key.public_key(),
            root=root,
            root_key=root_key,
            now=then,
        )
        return cls(key_type, root, root_key, issuing, issuing_key)

    def leaf(
        self, *, roles: Sequence[str] = ("consumer",), org_id: str = ORG_ID
    ) -> x509.Certificate:
        """A participant certificate from the issuing CA."""
        return issue_participant(
            organization_id=org_id,
            organization_name=ORG_NAME,
            roles=roles,
            public_key=generate_key(self.key_type).public_key(),
            issuer=self.issuing,
            issuer_key=self.issuing_key,
            now=NOW - timedelta(days=1),
        )

    def raw_leaf(
        self,
        extensions: Extensions | None = None,
        *,
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=30),
    ) -> x509.Certificate:
        """A leaf from the issuing CA with exactly ``extensions`` (default: a good profile)."""
        key = generate_key(self.key_type).public_key()
        return build_cert(
            subject=participant_name(),
            public_key=key,
            issuer=self.issuing,
            signing_key=self.issuing_key,
            extensions=leaf_extensions(key) if extensions is None else extensions,
            not_before=not_before,
            not_after=not_after,
        )

    def crl(
        self, revoked: Sequence[int] = (), *, days: int = 7, now: datetime = NOW
    ) -> x509.CertificateRevocationList:
        """A CRL from the issuing CA listing ``revoked`` serials."""
        entries = [RevokedEntry(s, now, x509.ReasonFlags.key_compromise) for s in revoked]
        return create_crl(
            issuer=self.issuing,
            issuer_key=self.issuing_key,
            revoked=entries,
            now=now,
            crl_number=1,
            days=days,
        )

    def trust(self) -> TrustStore:
        """Trust the root; know the issuing CA."""
        return TrustStore(anchors=(self.root,), intermediates=(self.issuing,))

    def verify(
        self,
        chain: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList] | None = None,
        *,
        trust: TrustStore | None = None,
        now: datetime = NOW,
    ) -> CertificateIdentity:
        """:func:`certs.verify` with this PKI's trust store and a fresh, empty CRL by default."""
        return verify(chain, trust or self.trust(), [self.crl()] if crls is None else crls, now=now)
