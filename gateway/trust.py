"""Trust material for client certificates, read from files and re-read when they change.

The CRL is re-read whenever its file changes (checked on each use by mtime and size), so a
``sluis certs revoke`` takes effect on the next request without a restart. A CRL that cannot
be read makes every certificate check fail closed (``crl-unavailable``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certs import CertificateRejected, TrustStore, load_crls


@dataclass(frozen=True)
class _Snapshot:
    stamp: tuple[int, int]
    crls: tuple[x509.CertificateRevocationList, ...]


class TrustMaterial:
    """The trust store (fixed at start) and the CRL bundle (reloaded on change)."""

    def __init__(self, trust_bundle: Path, crl_file: Path | None) -> None:
        self.store = TrustStore.from_pem(trust_bundle.read_bytes())
        self.crl_file = crl_file
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        """The current CRLs; raises ``CertificateRejected('crl-unavailable')`` when unreadable."""
        if self.crl_file is None:
            raise CertificateRejected("crl-unavailable", "no CRL configured (SLUIS_TLS_CRL)")
        try:
            info = self.crl_file.stat()
        except OSError as exc:
            raise CertificateRejected("crl-unavailable", f"CRL file: {exc.strerror}") from exc
        stamp = (info.st_mtime_ns, info.st_size)
        snapshot = self._snapshot
        if snapshot is not None and snapshot.stamp == stamp:
            return snapshot.crls
        with self._lock:
            try:
                crls = tuple(load_crls(self.crl_file.read_bytes()))
            except OSError as exc:
                raise CertificateRejected("crl-unavailable", f"CRL file: {exc.strerror}") from exc
            self._snapshot = _Snapshot(stamp, crls)
            return crls
