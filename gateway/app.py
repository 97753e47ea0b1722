"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from certs import TrustStore
from connectors.spill import SpillConfig
from gateway import __version__
from gateway.agreements import endpoints as agreement_endpoints
from gateway.agreements.service import AgreementService
from gateway.audit import endpoints as audit_endpoints
from gateway.audit.log import AuditLog
from gateway.audit.wiring import open_audit_log
from gateway.datasets import endpoints as catalog_endpoints
from gateway.datasets.factory import create_connector, spilling
from gateway.datasets.service import DatasetService
from gateway.exchange import endpoints as exchange_endpoints
from gateway.exchange.service import ExchangeService
from gateway.http import health, problems
from gateway.http.client_cert import ClientCertificateMiddleware
from gateway.http.limits import BodyLimitMiddleware
from gateway.http.throttle import RefusalThrottleMiddleware
from gateway.oauth import endpoints as oauth_endpoints
from gateway.oauth.clients import ClientService
from gateway.oauth.external import ExternalIssuers
from gateway.oauth.keyring import KeyRing
from gateway.oauth.server import IssuerConfig, SluisAuthorizationServer
from gateway.oauth.service import OAuthService
from gateway.participants import endpoints as participants
from gateway.participants.service import ParticipantService
from gateway.ratelimit.service import Clock, Limits, counters_for
from gateway.services import Services
from gateway.settings import (
    Settings,
    SettingsError,
    check_distinct_keys,
    load_audit_key,
    load_signing_key,
)
from gateway.storage.db import Database
from gateway.telemetry import Telemetry, configure
from gateway.trust import TrustMaterial

log = logging.getLogger("sluis")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _dataset_service(db: Database, settings: Settings) -> DatasetService:
    """Datasets whose connectors group and order beyond memory in the spill directory."""
    spill = SpillConfig(
        settings.spill_directory, settings.spill_memory_limit, settings.spill_disk_limit
    )
    return DatasetService(db, spilling(create_connector, spill))


def load_trust(settings: Settings) -> TrustMaterial:
    """Read the client-certificate trust bundle; refuse to start without one."""
    if settings.tls_client_ca is None:
        raise SettingsError("no client CA bundle: set SLUIS_TLS_CLIENT_CA")
    if settings.tls_crl is None:
        raise SettingsError("no CRL: set SLUIS_TLS_CRL (every certificate check needs one)")
    if not settings.tls_crl.is_file():  # else every certificate is refused: say it once, now
        raise SettingsError(
            f"CRL file {settings.tls_crl} does not exist: make one with `sluis certs crl` "
            "(every certificate check needs it)"
        )
    try:
        return TrustMaterial(settings.tls_client_ca, settings.tls_crl)
    except OSError as exc:
        raise SettingsError(f"client CA bundle {settings.tls_client_ca}: {exc.strerror}") from exc


def load_ishare_trust(settings: Settings, trust: TrustMaterial) -> TrustStore | None:
    """Trust anchors for iSHARE x5c chains, when the iSHARE profile is on."""
    if settings.ishare_party_id is None:
        return None
    if settings.ishare_trust_bundle is None:
        return trust.store
    try:
        return TrustStore.from_pem(settings.ishare_trust_bundle.read_bytes())
    except OSError as exc:
        raise SettingsError(f"iSHARE trust bundle: {exc.strerror}") from exc


async def _exchange(
    db: Database,
    datasets: DatasetService,
    agreements: AgreementService,
    audit: AuditLog,
    tel: Telemetry,
    *,
    owner: str | None,
) -> ExchangeService:
    """The exchange, once the exchanges a crash of this process cut off are recorded."""
    exchange = ExchangeService(db, datasets, agreements, audit, tel, owner=owner)
    await exchange.close_interrupted(now=datetime.now(UTC))
    return exchange


def create_app(
    settings: Settings, *, telemetry: Telemetry | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the gateway ASGI app. Storage opens (and migrates) in the lifespan.

    Raises SettingsError (before anything listens) for missing keys or trust material.
    ``clock`` drives the rate-limit windows (tests pass their own; default the wall clock).
    """
    own_telemetry = telemetry is None
    tel = telemetry or configure()
    signing_key = load_signing_key(settings)
    audit_key = load_audit_key(settings)
    check_distinct_keys(settings, signing_key, audit_key)
    trust = load_trust(settings)
    config = IssuerConfig(
        issuer=settings.public_url,
        resources=settings.resources,
        lifetime=timedelta(seconds=settings.token_lifetime),
        ishare_party_id=settings.ishare_party_id,
        ishare_trust=load_ishare_trust(settings, trust),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url)
        external = ExternalIssuers.from_settings(settings.external_issuers)
        audit: AuditLog | None = None
        limits: Limits | None = None
        try:
            if settings.auto_migrate:
                await db.upgrade()
            # Refuses (SettingsError) an audit key or origin that contradicts the log's own.
            audit = await open_audit_log(db, settings, audit_key, now=datetime.now(UTC))
            limits = Limits(counters_for(settings, db), settings, audit, clock or _utcnow)
            limits.start()
            keyring = KeyRing(db, signing_key, config.lifetime, audit)
            await keyring.start(datetime.now(UTC))
            oauth = OAuthService(
                db,
                SluisAuthorizationServer(config),
                keyring,
                ClientService(db),
                external,
                audit=audit,
            )
            datasets = _dataset_service(db, settings)
            agreements = AgreementService(db, datasets, audit)
            app.state.services = Services(
                settings=settings,
                db=db,
                trust=trust,
                participants=ParticipantService(db),
                oauth=oauth,
                audit=audit,
                datasets=datasets,
                agreements=agreements,
                exchange=await _exchange(
                    db, datasets, agreements, audit, tel, owner=settings.instance_name
                ),
                telemetry=tel,
                limits=limits,
            )
            yield
            await datasets.aclose()
        finally:
            if limits is not None:
                await limits.close()  # open refusal summaries are written before the log closes
            if audit is not None:
                await audit.close()
            await external.aclose()
            await db.dispose()
            if own_telemetry:
                tel.shutdown()

    app = FastAPI(
        title="Sluis",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(participants.router)
    app.include_router(oauth_endpoints.router)
    app.include_router(audit_endpoints.router)
    app.include_router(catalog_endpoints.router)
    app.include_router(agreement_endpoints.router)
    app.include_router(exchange_endpoints.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RefusalThrottleMiddleware)
    # Added last, so it runs first: proxy certificate headers are gone before anything else.
    app.add_middleware(ClientCertificateMiddleware, trusted_proxies=settings.trusted_proxies)
    tel.instrument(app)
    return app
