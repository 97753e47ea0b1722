"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import __version__
from gateway.http import health, problems
from gateway.http.client_cert import ClientCertificateMiddleware
from gateway.http.limits import BodyLimitMiddleware
from gateway.participants import endpoints as participants
from gateway.participants.service import ParticipantService
from gateway.services import Services
from gateway.settings import Settings, SettingsError
from gateway.storage.db import Database
from gateway.trust import TrustMaterial

log = logging.getLogger("sluis")


def load_trust(settings: Settings) -> TrustMaterial:
    """Read the client-certificate trust bundle; refuse to start without one."""
    if settings.tls_client_ca is None:
        raise SettingsError("no client CA bundle: set SLUIS_TLS_CLIENT_CA")
    if settings.tls_crl is None:
        raise SettingsError("no CRL: set SLUIS_TLS_CRL (every certificate check needs one)")
    try:
        return TrustMaterial(settings.tls_client_ca, settings.tls_crl)
    except OSError as exc:
        raise SettingsError(f"client CA bundle {settings.tls_client_ca}: {exc.strerror}") from exc


def create_app(settings: Settings) -> FastAPI:
    """Build the gateway ASGI app. Storage opens (and migrates) in the lifespan."""
    trust = load_trust(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url)
        try:
            if settings.auto_migrate:
                await db.upgrade()
            app.state.services = Services(
                settings=settings, db=db, trust=trust, participants=ParticipantService(db)
            )
            yield
        finally:
            await db.dispose()

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
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added last, so it runs first: proxy certificate headers are gone before anything else.
    app.add_middleware(ClientCertificateMiddleware, trusted_proxies=settings.trusted_proxies)
    return app
