"""Liveness and readiness probes (no client certificate needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from certs import CertificateRejected
from gateway.errors import ServiceUnavailable
from gateway.http.deps import ServicesDep
from gateway.storage import StorageUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> dict[str, str]:
    """The database answers and the CRL is readable and current."""
    try:
        await services.db.ping()
    except StorageUnavailable as exc:
        raise ServiceUnavailable("storage-unavailable", "the database is unavailable") from exc
    try:
        crls = services.trust.crls()
    except CertificateRejected as exc:
        raise ServiceUnavailable("crl-unavailable", exc.detail) from exc
    now = datetime.now(UTC)
    if any(crl.next_update_utc is None or crl.next_update_utc <= now for crl in crls):
        raise ServiceUnavailable(
            "crl-expired", "a CRL is past its nextUpdate: run `sluis certs crl`"
        )
    return {"status": "ready"}
