"""The ``certs`` error family.

::

    CertsError                 (code: str)   anything this package refuses
    ├── CertificateRejected    a presented certificate failed verification
    └── PKIError               a CA operation (init, issue, revoke, CRL) could not be done

Every error carries a stable, machine-readable ``code`` (kebab-case). The gateway maps
codes to HTTP problem types in one place; nothing here knows about HTTP.
"""

from __future__ import annotations


class CertsError(Exception):
    """Base of every error raised by :mod:`certs`."""

    code: str = "certs-error"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class CertificateRejected(CertsError):
    """A client certificate (chain) was refused.

    Stable codes: ``no-certificate``, ``malformed``, ``untrusted-issuer``, ``bad-signature``,
    ``expired``, ``not-yet-valid``, ``not-a-ca``, ``path-too-long``, ``wrong-key-usage``,
    ``wrong-extended-key-usage``, ``unknown-critical-extension``, ``weak-key``,
    ``missing-organization-identifier``, ``invalid-organization-identifier``,
    ``missing-participant-uri``, ``revoked``, ``crl-unavailable``, ``crl-expired``,
    ``crl-invalid``, ``leaf-is-ca`` (a CA certificate presented as a client certificate),
    ``weak-signature`` (signed with SHA-1, MD5 or another algorithm we do not accept),
    ``missing-organization-name`` (no single subject ``O``).
    """


class PKIError(CertsError):
    """A CA operation failed (missing CA, bad input, key file exposure, ...).

    Stable codes: ``invalid-organization-identifier``, ``invalid-organization-name``,
    ``unknown-role``, ``unknown-key-type``, ``unsupported-key``, ``weak-key``, ``key-mismatch``,
    ``invalid-name``, ``invalid-validity``, ``invalid-ip-address``, ``invalid-server-name``,
    ``bad-csr``, ``invalid-crl``, ``invalid-trust-bundle``, ``ca-exists``, ``ca-missing``,
    ``ca-corrupt``, ``index-corrupt``, ``key-exists``, ``key-missing``, ``key-permissions``,
    ``key-passphrase``, ``unknown-serial``, ``already-revoked``, ``unreadable-file`` (CLI).
    """
