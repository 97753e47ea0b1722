"""OAuth errors as HTTP: RFC 6749 §5.2 / RFC 6750 §3 fields inside an RFC 9457 problem."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from gateway.http.problems import bearer_challenge as challenge
from gateway.http.problems import problem

TITLES = {
    "invalid_request": "Invalid OAuth request",
    "invalid_client": "Client authentication failed",
    "invalid_grant": "Invalid grant",
    "unauthorized_client": "Client not authorised for this grant",
    "unsupported_grant_type": "Unsupported grant type",
    "invalid_scope": "Invalid scope",
    "invalid_target": "Invalid resource",
    "invalid_token": "Invalid access token",
    "insufficient_scope": "Insufficient scope",
    "temporarily_unavailable": "Token service temporarily unavailable",
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_problem(
    status: int,
    error: str,
    description: str,
    *,
    instance: str,
    code: str,
    bearer_challenge: bool = False,
) -> JSONResponse:
    """A problem+json (type ``urn:sluis:problem:<code>``) with ``error``/``error_description``."""
    headers = dict(NO_STORE)
    if bearer_challenge:  # fixed strings only: the description is caller-influenced
        headers["WWW-Authenticate"] = challenge(error)
    return problem(
        status,
        code,
        TITLES.get(error, "OAuth error"),
        description,
        instance=instance,
        headers=headers,
        error=error,
        error_description=description,
    )
