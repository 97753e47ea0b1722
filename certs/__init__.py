"""Sluis PKI (pure over ``cryptography``); see certs/errors.py for the error family.

* :mod:`certs.identity` -- what a participant certificate says (org id, URI, roles).
* :mod:`certs.verify` -- our own path validation + CRL checks for client certificates.
* :mod:`certs.issue` -- pure issuance of CA, participant and server certificates and CRLs.
* :mod:`certs.store` -- the IO edge: a CA directory on disk.
"""

from certs.crl import RevokedEntry, create_crl, load_crls
from certs.csr import load_csr, public_key_from_csr
from certs.errors import CertificateRejected, CertsError, PKIError
from certs.identity import (
    ORGANIZATION_ID_PATTERN,
    ORGANIZATION_IDENTIFIER_OID,
    ROLES,
    CertificateIdentity,
    identity_of,
    participant_uri,
    thumbprint_sha256,
    validate_organization_id,
)
from certs.index import IssuedRecord
from certs.issue import (
    certificate_from_csr,
    create_issuing_ca,
    create_root_ca,
    issue_participant,
    issue_server,
)
from certs.keys import KeyType, PrivateKey, PublicKey, generate_key
from certs.signing import party_ids, verify_signing_chain
from certs.store import CADirectory, IssuedFiles
from certs.trust import TrustStore, load_pem_chain
from certs.verify import verify

__all__ = [
    "ORGANIZATION_IDENTIFIER_OID",
    "ORGANIZATION_ID_PATTERN",
    "ROLES",
    "CADirectory",
    "CertificateIdentity",
    "CertificateRejected",
    "CertsError",
    "IssuedFiles",
    "IssuedRecord",
    "KeyType",
    "PKIError",
    "PrivateKey",
    "PublicKey",
    "RevokedEntry",
    "TrustStore",
    "certificate_from_csr",
    "create_crl",
    "create_issuing_ca",
    "create_root_ca",
    "generate_key",
    "identity_of",
    "issue_participant",
    "issue_server",
    "load_crls",
    "load_csr",
    "load_pem_chain",
    "participant_uri",
    "party_ids",
    "public_key_from_csr",
    "thumbprint_sha256",
    "validate_organization_id",
    "verify",
    "verify_signing_chain",
]
