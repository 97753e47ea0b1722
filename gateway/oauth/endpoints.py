"""OAuth2 endpoints (token, JWKS, metadata, introspection, revocation) and the clients admin API.

The token, introspection and revocation endpoints need the mTLS client certificate (the
``Caller`` dependency): tokens are always bound, and introspection and revocation answer
authenticated callers only. The metadata and the JWKS are public on purpose (RFC 8414,
RFC 7517): they hold nothing a client or resource server must not see before it talks to
us, and they are what it needs to do so (see docs/oauth.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from gateway.admin.service import admin_changes
from gateway.audit.entry import hash_token
from gateway.errors import NotFound
from gateway.http import audit_events
from gateway.http.bearer import TokenCallerDep
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.http.deps import Caller, OperatorCaller, ServicesDep
from gateway.http.forms import FormError, read_form
from gateway.http.oauth_errors import NO_STORE, oauth_problem
from gateway.http.problems import rate_limited
from gateway.oauth.schemas import Client, ClientCreate, ClientUpdate
from gateway.participants.service import AuthenticatedParticipant
from gateway.services import Services

router = APIRouter()


def _actionable(description: str, client_id: str) -> str:
    """authlib's "cannot authenticate with methods: ('tls_client_auth', ...)" as what to do."""
    if not description.startswith("The client cannot authenticate with methods"):
        return description
    return (
        f"no OAuth client {client_id} that may use this authentication method is registered: "
        f"an operator runs `sluis clients add {client_id} --auth-method tls_client_auth "
        "--scope dataset:<id>` (or use the method the client was registered with)"
    )


#: The iSHARE scope: "the client's registered scopes" at /connect/token.
ISHARE_SCOPE = "iSHARE"


def _invalid_request(request: Request, description: str) -> JSONResponse:
    return oauth_problem(
        400, "invalid_request", description, instance=request.url.path, code="oauth-invalid-request"
    )


@router.post("/oauth2/token", tags=["oauth"])
async def token(request: Request, caller: Caller, services: ServicesDep) -> Response:
    """RFC 6749 client credentials; the token is bound to the presented certificate.

    Rate-limited per client and per source address (429, summarised in the audit log).
    """
    return await _token(request, caller, services, ishare=False)


@router.post("/connect/token", tags=["oauth"])
async def ishare_token(request: Request, caller: Caller, services: ServicesDep) -> Response:
    """The iSHARE token endpoint: the same as ``/oauth2/token`` (the same client
    authentication, binding, limits and entries), where the scope ``iSHARE`` asks for the
    client's registered scopes."""
    return await _token(request, caller, services, ishare=True)


@router.get("/capabilities", tags=["oauth"])
async def capabilities(services: ServicesDep) -> JSONResponse:
    """The iSHARE capabilities token (open, as iSHARE has it; public features only)."""
    if services.capabilities is None:
        raise NotFound("ishare-not-configured", "this gateway is not an iSHARE party")
    body = {"capabilities_token": services.capabilities.token(datetime.now(UTC))}
    return JSONResponse(body, headers=NO_STORE)


def ishare_scopes(form: dict[str, str]) -> dict[str, str]:
    """``form`` with the scope ``iSHARE`` taken out: alone, it asks for every registered scope
    (no ``scope``); beside others, those others are asked for."""
    scopes = [s for s in form.get("scope", "").split() if s != ISHARE_SCOPE]
    out = {k: v for k, v in form.items() if k != "scope"}
    if scopes:
        out["scope"] = " ".join(scopes)
    return out


async def _token(
    request: Request, caller: AuthenticatedParticipant, services: Services, *, ishare: bool
) -> Response:
    limited = await _rate_limited(request, caller.participant.id, services)
    if limited is not None:
        return limited
    try:
        form = await read_form(request)
    except FormError as exc:
        return _invalid_request(request, str(exc))
    if ishare:
        form = ishare_scopes(form)
    presented: PresentedCertificate = request.scope["state"][STATE_KEY]  # set by Caller
    status_code, body, headers = await services.oauth.token(
        caller,
        form,
        request.headers,
        services.trust.crls(),
        datetime.now(UTC),
        chain=presented.chain,
    )
    client_id = caller.participant.id
    if status_code != status.HTTP_200_OK:
        error = str(body.get("error", "invalid_request"))
        description = _actionable(str(body.get("error_description") or error), client_id)
        refusal = audit_events.entry(
            request, "token-refused", result="deny", reasons=(error, description), client=client_id
        )
        await audit_events.record_refusal(request, refusal)
        return oauth_problem(
            status_code,
            error,
            description,
            instance=request.url.path,
            code=f"oauth-{error.replace('_', '-')}",
        )
    issued = audit_events.entry(
        request,
        "token-issued",
        result="permit",
        reasons=(f"scope={body['scope']}",),
        client=client_id,
        token_sha256=hash_token(str(body["access_token"])),
    )
    await audit_events.record(request, issued)  # no entry, no token (503)
    return JSONResponse(body, headers={**dict(headers), **NO_STORE})


async def _rate_limited(request: Request, client_id: str, services: Services) -> Response | None:
    """The 429 answer when this client or address asked for too many tokens, else None."""
    if services.limits is None:
        return None
    source = request.client.host if request.client else None
    verdict = await services.limits.token_request(client_id, source)
    if verdict.allowed:
        return None
    refusal = audit_events.entry(
        request, "token-refused", result="deny", reasons=("rate-limited",), client=client_id
    )
    await audit_events.record_refusal(request, refusal)
    return rate_limited(verdict.retry_after, instance=request.url.path)


@router.get("/oauth2/jwks", tags=["oauth"])
async def jwks(services: ServicesDep) -> dict[str, object]:
    """The keys that sign live access tokens (retired keys until their tokens expire)."""
    return services.oauth.keyring.jwks()


@router.get("/.well-known/oauth-authorization-server", tags=["oauth"])
async def metadata(services: ServicesDep) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = services.oauth.issuer
    methods = ["tls_client_auth", "private_key_jwt"]
    if services.settings.ishare_party_id is not None:
        methods.append("ishare")
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": [
            "ES256",
            "PS256",
            "Ed25519",
            "EdDSA",
            "RS256",
        ],
        "introspection_endpoint_auth_methods_supported": ["tls_client_auth"],
        "revocation_endpoint_auth_methods_supported": ["tls_client_auth"],
        "tls_client_certificate_bound_access_tokens": True,
        "authorization_response_iss_parameter_supported": False,
    }


async def _token_param(request: Request) -> str | JSONResponse:
    """The ``token`` form parameter, or the invalid_request problem to answer with."""
    try:
        form = await read_form(request)
    except FormError as exc:
        return _invalid_request(request, str(exc))
    token_value = form.get("token")
    if not token_value:
        return _invalid_request(request, "the token parameter is required")
    return token_value


@router.post("/oauth2/introspect", tags=["oauth"])
async def introspect(request: Request, caller: Caller, services: ServicesDep) -> Response:
    """RFC 7662, for the token's own client and operators; others learn only ``active: false``."""
    token_value = await _token_param(request)
    if isinstance(token_value, JSONResponse):
        return token_value
    body = await services.oauth.introspect(token_value, caller, services.trust, datetime.now(UTC))
    return JSONResponse(body, headers=NO_STORE)


@router.post("/oauth2/revoke", tags=["oauth"])
async def revoke(request: Request, caller: Caller, services: ServicesDep) -> Response:
    """RFC 7009: always 200 for a well-formed request, whatever the token was."""
    token_value = await _token_param(request)
    if isinstance(token_value, JSONResponse):
        return token_value
    await services.oauth.revoke(token_value, caller, datetime.now(UTC))
    return Response(status_code=status.HTTP_200_OK, headers=NO_STORE)


@router.get("/v1/session", tags=["oauth"])
async def session(token_caller: TokenCallerDep) -> dict[str, Any]:
    """What the bearer token on this request authorises (a token-protected whoami)."""
    claims = token_caller.claims
    return {
        "participant": token_caller.participant.participant.id,
        "client_id": claims.client_id,
        "issuer": claims.issuer,
        "scopes": sorted(claims.scopes),
        "audience": list(claims.audience),
        "expires_at": claims.expires_at,
        "certificate_thumbprint": claims.thumbprint,
    }


@router.get("/v1/admin/clients", response_model=list[Client], tags=["admin"])
async def list_clients(_: OperatorCaller, services: ServicesDep) -> list[Client]:
    """Every OAuth client."""
    return await services.oauth.clients.list()


@router.post(
    "/v1/admin/clients", response_model=Client, status_code=status.HTTP_201_CREATED, tags=["admin"]
)
async def create_client(
    request: Request, body: ClientCreate, _: OperatorCaller, services: ServicesDep
) -> Client:
    """Register a participant as an OAuth client."""
    actor = audit_events.actor(request)
    return await admin_changes(services).create_client(actor, body, now=datetime.now(UTC))


@router.get("/v1/admin/clients/{client_id}", response_model=Client, tags=["admin"])
async def get_client(client_id: str, _: OperatorCaller, services: ServicesDep) -> Client:
    """One client."""
    return await services.oauth.clients.get(client_id)


@router.patch("/v1/admin/clients/{client_id}", response_model=Client, tags=["admin"])
async def update_client(
    request: Request, client_id: str, body: ClientUpdate, _: OperatorCaller, services: ServicesDep
) -> Client:
    """Change a client's scopes or keys, or disable it."""
    actor = audit_events.actor(request)
    admin = admin_changes(services)
    return await admin.update_client(actor, client_id, body, now=datetime.now(UTC))
