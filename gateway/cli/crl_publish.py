"""``sluis certs publish-crl``: the CRL job of a CA whose key is a Kubernetes Secret.

The Helm chart's CronJob runs it when cert-manager makes the client CA
(``tls.clientCaCertManager``): it reads every certificate revocation from the gateway's audit
log (the source of truth, :mod:`gateway.admin.revocations`), reads the published CRL bundle
from the ConfigMap the gateway pods mount, re-signs this CA's CRL with its key
(:func:`certs.crl_refresh.refresh_bundle`: nothing the previous CRL listed is dropped) and
writes it back with a merge patch at the version it read (:mod:`gateway.kube`). The gateway
re-reads the mounted file once the kubelet has synced it.

The wall clock is read here, at the edge.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from certs.crl import RevokedEntry
from certs.crl_refresh import RefreshedBundle, refresh_bundle
from certs.errors import PKIError
from certs.files import read_private_key
from certs.trust import load_pem_chain
from gateway.cli.context import CliState, existing_database
from gateway.cli.output import CliError, console, reports_errors
from gateway.kube import SERVICE_ACCOUNT_DIR, ConfigMaps, InCluster, KubeError
from gateway.settings import Settings, load_settings


@dataclass(frozen=True)
class CrlSource:
    """The CA that signs, and the ConfigMap key its CRL bundle is published under."""

    ca_cert: Path
    ca_key: Path
    config_map: str
    key: str
    days: int


@reports_errors
def publish_crl(
    ctx: typer.Context,
    *,
    ca_cert: Annotated[Path, typer.Option(help="the CA certificate (cert-manager: tls.crt)")],
    ca_key: Annotated[Path, typer.Option(help="the CA key (cert-manager: tls.key), 0400/0440")],
    configmap: Annotated[str, typer.Option(help="the ConfigMap the gateway mounts its CRL from")],
    key: Annotated[str, typer.Option(help="the ConfigMap key of the CRL bundle")] = "crl.pem",
    days: Annotated[int, typer.Option(min=1, help="CRL validity (nextUpdate) in days")] = 7,
    service_account_dir: Annotated[
        Path, typer.Option(hidden=True, help="where the pod's service account is mounted")
    ] = SERVICE_ACCOUNT_DIR,
) -> None:
    """Sign this CA's CRL from the audit log's revocations and write it into a ConfigMap.

    Runs in a pod (in-cluster service account: get and patch on that one ConfigMap). Every
    revocation the gateway's audit log holds is listed, plus every one the CRL before it
    listed; other issuers' CRLs in the bundle are kept.
    """
    settings = ctx.obj.settings() if isinstance(ctx.obj, CliState) else load_settings()
    source = CrlSource(ca_cert, ca_key, configmap, key, days)
    now = datetime.now(UTC)
    try:
        cluster = InCluster.from_environment(account_dir=service_account_dir)
        done = publish(settings, source, ConfigMaps(cluster), now=now)
    except KubeError as exc:
        raise CliError(f"Kubernetes API: {exc.detail}") from exc
    dropped = f", {done.dropped} naming this CA without its signature dropped" * bool(done.dropped)
    console.print(
        f"CRL published to configmaps/{configmap} (key {key}) in {cluster.namespace}: "
        f"number {done.crl_number}, {len(done.revoked)} revoked, next update "
        f"{now + timedelta(days=days):%Y-%m-%dT%H:%MZ}; {done.kept} other issuers' CRLs "
        f"kept{dropped}",
        markup=False,
        soft_wrap=True,
    )


def publish(
    settings: Settings, source: CrlSource, config_maps: ConfigMaps, *, now: datetime
) -> RefreshedBundle:
    """Read, re-sign and write back; the bundle written."""
    issuer = load_pem_chain(_read(source.ca_cert))[0]
    issuer_key = read_private_key(source.ca_key)
    revoked = _revocations(settings)
    current = config_maps.get(source.config_map)
    previous = current.data.get(source.key, "").encode()
    refreshed = refresh_bundle(
        previous, issuer=issuer, issuer_key=issuer_key, revoked=revoked, now=now, days=source.days
    )
    config_maps.replace_key(current, source.key, refreshed.pem.decode("ascii"))
    return refreshed


def _revocations(settings: Settings) -> list[RevokedEntry]:
    # Imported here: SQLAlchemy only for this command, not for every `sluis certs`.
    from gateway.admin.revocations import (  # noqa: PLC0415
        RevocationLogError,
        revoked_certificates,
    )
    from gateway.storage.db import Database  # noqa: PLC0415

    existing_database(settings)

    async def main() -> list[RevokedEntry]:
        db = Database(settings.effective_database_url)
        try:
            return await revoked_certificates(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except RevocationLogError as exc:
        raise CliError(f"no CRL published: {exc.detail}") from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PKIError("unreadable-file", f"cannot read {path}: {exc.strerror}") from exc
