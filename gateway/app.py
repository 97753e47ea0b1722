"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI

from certs import TrustStore
from connectors.spill import SpillConfig, sweep
from gateway import __version__
from gateway.agreements import endpoints as agreement_endpoints
from gateway.agreements.service import AgreementService
from gateway.audit import endpoints as audit_endpoints
from gateway.audit import export_api as audit_export
from gateway.audit.log import AuditLog
from gateway.audit.wiring import open_audit_log
from gateway.console import api as console_api
from gateway.console import charts_endpoints as console_charts
from gateway.console import endpoints as console_endpoints
from gateway.datasets import endpoints as catalog_endpoints
from gateway.datasets.factory import create_connector, spilling
from gateway.datasets.service import DatasetService
from gateway.dsp import consumer_endpoints as dsp_consumer_endpoints
from gateway.dsp import endpoints as dsp_endpoints
from gateway.dsp.callbacks import Callbacks
from gateway.dsp.consumer import ConsumerNegotiations
from gateway.dsp.consumer_transfer import ConsumerTransfers
from gateway.dsp.negotiation import NegotiationService
from gateway.dsp.outbox import Outbox
from gateway.dsp.peer import Peer
from gateway.dsp.transfer import TransferService
from gateway.exchange import endpoints as exchange_endpoints
from gateway.exchange.fast_data import DataRoute
from gateway.exchange.service import ExchangeService
from gateway.http import health, openapi, problems
from gateway.http.client_cert import ClientCertificateMiddleware
from gateway.http.limits import BodyLimitMiddleware
from gateway.http.throttle import RefusalThrottleMiddleware
from gateway.oauth import endpoints as oauth_endpoints
from gateway.oauth.capabilities import Capabilities
from gateway.oauth.clients import ClientService
from gateway.oauth.external import ExternalIssuers
from gateway.oauth.keyring import KeyRing
from gateway.oauth.parties import SatelliteTrust
from gateway.oauth.satellite import Satellite, SatelliteConfig
from gateway.oauth.server import IssuerConfig, SluisAuthorizationServer
from gateway.oauth.service import OAuthService
from gateway.participants import endpoints as participants
from gateway.participants.service import ParticipantService
from gateway.ratelimit.service import Clock, Limits, counters_for
from gateway.registry import registry_of
from gateway.services import Services
from gateway.settings import (
    Settings,
    SettingsError,
    SigningKey,
    check_distinct_keys,
    load_audit_key,
    load_signing_key,
)
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.telemetry import Telemetry, configure
from gateway.trust import TrustMaterial

log = logging.getLogger("sluis")
ROUTERS = (
    health,
    participants,
    oauth_endpoints,
    audit_endpoints,
    audit_export,
    console_endpoints,
    console_api,
    console_charts,
    catalog_endpoints,
    agreement_endpoints,
    exchange_endpoints,
    dsp_endpoints,
    dsp_consumer_endpoints,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _dataset_service(db: Database, settings: Settings) -> DatasetService:
    """Datasets whose connectors group and order beyond memory in the spill directory, after
    removing what a killed server left there (only our own, unlocked query directories)."""
    sweep(settings.spill_directory)
    spill = SpillConfig(
        settings.spill_directory,
        settings.spill_memory_limit,
        settings.spill_disk_limit,
        engines=settings.spill_engines,
    )
    return DatasetService(db, spilling(create_connector, spill))


async def _open_storage(db: Database, settings: Settings) -> None:
    """Migrate (when configured) and load the in-memory registry (gateway/registry.py)."""
    if settings.auto_migrate:
        await db.upgrade()
    await registry_of(db).start()  # polls for other replicas' changes until closed


def dsp_callback_tls(settings: Settings) -> ssl.SSLContext:
    """How DSP callbacks are made: servers verified against ``dsp_callback_ca`` (else the
    system store), the gateway presenting ``dsp_client_cert`` when set."""
    ca, cert, key = settings.dsp_callback_ca, settings.dsp_client_cert, settings.dsp_client_key
    if (cert is None) != (key is None):
        raise SettingsError("set both dsp_client_cert and dsp_client_key, or neither")
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None and key is not None:  # who calls: the consumer can check it
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"DSP callback TLS (dsp_callback_ca, dsp_client_cert): {exc}") from exc
    return context


def load_capabilities(settings: Settings) -> Capabilities | None:
    """The iSHARE capabilities signer, when the profile is on with a key and a certificate."""
    key, chain = settings.ishare_signing_key, settings.ishare_certificate
    if settings.ishare_party_id is None or key is None or chain is None:
        if (key is None) != (chain is None):
            raise SettingsError("set both ishare_signing_key and ishare_certificate, or neither")
        return None
    return Capabilities.load(settings.ishare_party_id, key, chain, settings.public_url)


def load_satellite(
    settings: Settings, capabilities: Capabilities | None, trust: TrustStore | None
) -> Satellite | None:
    """Where iSHARE parties are checked, when ``ishare_satellite_url`` is set."""
    url, satellite_id = settings.ishare_satellite_url, settings.ishare_satellite_id
    if url is None:
        return None
    if satellite_id is None or capabilities is None or trust is None:
        raise SettingsError(
            "ishare_satellite_url needs ishare_satellite_id, ishare_party_id, "
            "ishare_signing_key and ishare_certificate (the gateway signs in at the satellite)"
        )
    ca = settings.ishare_satellite_ca
    try:
        tls = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"ishare_satellite_ca: {exc}") from exc
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    config = SatelliteConfig(
        url=url,
        trust=SatelliteTrust(satellite_id, capabilities.party_id, trust),
        cache=timedelta(seconds=settings.ishare_satellite_cache_seconds),
        timeout=settings.ishare_satellite_timeout,
        tls=tls,
    )
    return Satellite(config, capabilities)


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


@asynccontextmanager
async def _beating(exchange: ExchangeService, stale_after: float) -> AsyncIterator[None]:
    """The heartbeats below, for as long as the block runs."""
    beating = asyncio.create_task(_heartbeats(exchange, stale_after))
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def _heartbeats(exchange: ExchangeService, stale_after: float) -> None:
    """Every tenth of ``stale_after``: this process is alive, and the open exchanges of a
    process that is not are recorded as interrupted (see ``ExchangeService.heartbeat``)."""
    while True:
        await asyncio.sleep(stale_after / 10)
        try:
            closed = await exchange.heartbeat(
                now=datetime.now(UTC), stale_after=timedelta(seconds=stale_after)
            )
        except StorageUnavailable as exc:  # the next beat tries again
            log.warning("instance heartbeat failed: %s", exc)
        except Exception:  # a bug must not stop the beats: this process would look gone
            log.exception("instance heartbeat failed")
        else:
            if closed:
                log.info("recorded %d exchanges of gone gateway processes as interrupted", closed)


def _outbox(db: Database, audit: AuditLog, settings: Settings, tls: ssl.SSLContext) -> Outbox:
    """The DSP callback outbox and its sender (started in the lifespan, after the services;
    closing it closes the sender)."""
    return Outbox(
        db,
        audit,
        Callbacks(tuple(settings.dsp_callback_allow_networks), tls),
        retry_interval=settings.dsp_callback_retry_interval,
        give_up_after=timedelta(seconds=settings.dsp_callback_give_up_after),
    )


class _DspServices(TypedDict):
    dsp: NegotiationService
    transfers: TransferService
    dsp_consumer: ConsumerNegotiations
    dsp_consumer_transfers: ConsumerTransfers


@dataclass(frozen=True)
class _Dsp:
    """What the Dataspace Protocol's services send with: the provider's outbox of callback
    messages and the consumer's client for calls to other providers."""

    outbox: Outbox
    peer: Peer

    def services(
        self,
        db: Database,
        *,
        datasets: DatasetService,
        agreements: AgreementService,
        oauth: OAuthService,
        audit: AuditLog,
        settings: Settings,
    ) -> _DspServices:
        """The provider's (negotiations, transfers) and the consumer's services."""
        url, outbox, callbacks = settings.public_url, self.outbox, self.outbox.callbacks
        lifetime = timedelta(seconds=settings.token_lifetime)
        return {
            "dsp": NegotiationService(db, datasets, agreements, audit, callbacks, outbox=outbox),
            "transfers": TransferService(
                db,
                agreements,
                oauth,
                audit,
                callbacks,
                outbox=outbox,
                public_url=url,
                lifetime=lifetime,
            ),
            "dsp_consumer": ConsumerNegotiations(
                db, audit, self.peer, public_url=url, outbox=outbox
            ),
            "dsp_consumer_transfers": ConsumerTransfers(
                db, audit, self.peer, public_url=url, outbox=outbox
            ),
        }

    async def aclose(self) -> None:
        await self.outbox.aclose()
        await self.peer.aclose()


def _keys(settings: Settings) -> tuple[SigningKey, ed25519.Ed25519PrivateKey]:
    """The token signing key and the audit log's key: loaded, and refused if the same."""
    signing_key = load_signing_key(settings)
    audit_key = load_audit_key(settings)
    check_distinct_keys(settings, signing_key, audit_key)
    return signing_key, audit_key


async def _close_clients(external: ExternalIssuers, satellite: Satellite | None) -> None:
    """Close the HTTP clients of the external issuers and the iSHARE satellite."""
    await external.aclose()
    if satellite is not None:
        await satellite.aclose()


def _routes(app: FastAPI) -> None:
    """Every router's routes; first, the plain GET /data requests' own (fast_data.py), which
    skips the search through the routers."""
    for module in ROUTERS:
        app.include_router(module.router)
    app.router.routes.insert(0, DataRoute())


def create_app(
    settings: Settings, *, telemetry: Telemetry | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the gateway ASGI app. Storage opens (and migrates) in the lifespan.

    Raises SettingsError (before anything listens) for missing keys or trust material.
    ``clock`` drives the rate-limit windows (tests pass their own; default the wall clock).
    """
    own_telemetry = telemetry is None
    tel = telemetry or configure()
    signing_key, audit_key = _keys(settings)
    trust = load_trust(settings)
    callback_tls = dsp_callback_tls(settings)
    capabilities = load_capabilities(settings)
    config = IssuerConfig(
        issuer=settings.public_url,
        resources=settings.resources,
        lifetime=timedelta(seconds=settings.token_lifetime),
        ishare_party_id=settings.ishare_party_id,
        ishare_trust=load_ishare_trust(settings, trust),
    )
    satellite = load_satellite(settings, capabilities, config.ishare_trust)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url)
        external = ExternalIssuers.from_settings(settings.external_issuers)
        audit: AuditLog | None = None
        limits: Limits | None = None
        try:
            await _open_storage(db, settings)
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
                satellite=satellite,
            )
            datasets = _dataset_service(db, settings)
            agreements = AgreementService(db, datasets, audit)
            dsp = _Dsp(
                _outbox(db, audit, settings, callback_tls),
                Peer.over(tuple(settings.dsp_callback_allow_networks), callback_tls),
            )
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
                capabilities=capabilities,
                **dsp.services(
                    db,
                    datasets=datasets,
                    agreements=agreements,
                    oauth=oauth,
                    audit=audit,
                    settings=settings,
                ),
            )
            dsp.outbox.start()  # messages a stop or crash left undelivered go out again now
            async with _beating(app.state.services.exchange, settings.instance_stale_after):
                yield
            await dsp.aclose()
            await datasets.aclose()
        finally:
            await registry_of(db).close()
            if limits is not None:
                await limits.close()  # open refusal summaries are written before the log closes
            if audit is not None:
                await audit.close()
            await _close_clients(external, satellite)
            await db.dispose()
            if own_telemetry:
                tel.shutdown()

    app = FastAPI(
        title="Sluis",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=openapi.unique_id,
    )
    # FastAPI's documented way to replace the document is to assign app.openapi
    app.openapi = functools.partial(openapi.document, app)  # type: ignore[method-assign]
    problems.install(app)
    _routes(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RefusalThrottleMiddleware)
    # Added last, so it runs first: proxy certificate headers are gone before anything else.
    app.add_middleware(ClientCertificateMiddleware, trusted_proxies=settings.trusted_proxies)
    tel.instrument(app)
    return app
