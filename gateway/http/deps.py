"""FastAPI dependencies: services, the authenticated participant, role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from cryptography import x509
from fastapi import Depends, Request, Response

import certs
from gateway.errors import Forbidden
from gateway.http.audit_events import CALLER_KEY
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.oauth.holders import verified_holder
from gateway.participants.service import AuthenticatedParticipant
from gateway.ratelimit.service import RateLimited
from gateway.registry import Snapshot, registry_of
from gateway.services import Services
from gateway.telemetry import SPAN_AUTHENTICATE

HOLDER_KEY = "sluis.holder"  # in the connection's ASGI tls extension: one per TLS connection


async def get_services(request: Request) -> Services:
    """The running gateway's services (async: a sync dependency would cost a thread hop)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def authenticated(request: Request, services: ServicesDep) -> AuthenticatedParticipant:
    """Verify the presented client certificate and resolve its participant.

    Raises ``certs.CertificateRejected`` (401) or ``Forbidden`` (403); both become problem+json.
    """
    presented: PresentedCertificate = request.scope.get("state", {}).get(
        STATE_KEY, PresentedCertificate("none")
    )
    if presented.problem is not None:
        raise presented.problem
    if presented.source == "none" or not presented.chain:
        raise certs.CertificateRejected(
            "no-certificate", "this endpoint needs a client certificate"
        )
    with services.telemetry.span(SPAN_AUTHENTICATE, source=presented.source):
        caller = await _holder(request, services, presented, datetime.now(UTC))
    request.scope.setdefault("state", {})[CALLER_KEY] = caller  # for the audit entries
    _check_throttle(request, services, caller.participant.id)
    return caller


@dataclass(frozen=True, slots=True)
class _Held:
    """A TLS connection's verified holder, and what it was verified against."""

    crls: tuple[x509.CertificateRevocationList, ...]
    snapshot: Snapshot
    caller: AuthenticatedParticipant


async def _holder(
    request: Request, services: Services, presented: PresentedCertificate, now: datetime
) -> AuthenticatedParticipant:
    """The verified holder of the presented chain, cached per TLS connection.

    The cache lives in the connection's own ASGI ``tls`` extension dict and is used only
    while the CRLs and the registry snapshot are the very ones it was verified against and
    the certificate has not expired: a new CRL or any registry change (a suspension) makes
    the next request on a kept-alive connection verify again. A proxy's forwarded
    certificate is never cached: one proxy connection carries many clients.
    """
    tls = request.scope.get("extensions", {}).get("tls") if presented.source == "tls" else None
    crls = services.trust.crls()  # crl-unavailable: nothing is served from the cache either
    snapshot = await registry_of(services.db).current()  # 503 once it cannot be confirmed
    held = tls.get(HOLDER_KEY) if tls is not None else None
    if (
        isinstance(held, _Held)
        and held.crls is crls
        and held.snapshot is snapshot
        and now < held.caller.certificate.not_after
    ):
        return held.caller
    source = presented.source
    assert source != "none"  # noqa: S101 - refused by the caller before this
    caller = await verified_holder(
        services.participants, presented.chain, services.trust, source, now
    )
    if tls is not None:
        tls[HOLDER_KEY] = _Held(crls, snapshot, caller)
    return caller


def _check_throttle(request: Request, services: Services, participant: str) -> None:
    """RateLimited (429) for a participant refused too often in this window (issue 11)."""
    limits = getattr(services, "limits", None)
    if limits is None:
        return
    source = request.client.host if request.client else None
    retry_after = limits.participant_blocked(participant, source)
    if retry_after is not None:
        raise RateLimited(retry_after)


Caller = Annotated[AuthenticatedParticipant, Depends(authenticated)]


def require_role(
    role: str,
) -> Callable[[AuthenticatedParticipant], Awaitable[AuthenticatedParticipant]]:
    """A dependency that admits only callers holding ``role`` (registry and certificate)."""

    async def check(caller: Caller) -> AuthenticatedParticipant:
        if role not in caller.effective_roles:
            raise Forbidden("role-required", f"this needs the {role} role")
        return caller

    return check


OperatorCaller = Annotated[AuthenticatedParticipant, Depends(require_role("operator"))]


async def no_store(response: Response) -> None:
    """``Cache-Control: no-store`` on an answer that carries audit data (no cached copy)."""
    response.headers["Cache-Control"] = "no-store"


NoStore = Depends(no_store)
