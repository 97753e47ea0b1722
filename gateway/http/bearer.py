"""The resource-server check as a FastAPI dependency: ``TokenCallerDep``.

The token must come in the Authorization header (``Bearer``), exactly once; a token in the
query string or the form body is refused outright rather than ignored, so a client that
leaks tokens into URLs learns about it. The certificate on this connection must be the one
the token is bound to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from gateway.auth.tokens import TokenRejected, VerifiedMemo
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.http.deps import Caller, ServicesDep
from gateway.oauth.service import TokenCaller

MEMO_KEY = "sluis.token"  # in the connection's ASGI tls extension: one per TLS connection


async def bearer(request: Request, caller: Caller, services: ServicesDep) -> TokenCaller:
    """Verify the bearer token of this request (see the module docstring)."""
    if "access_token" in request.query_params:
        raise TokenRejected(
            "in-query",
            "tokens are accepted in the Authorization header only",
            error="invalid_request",
        )
    values = request.headers.getlist("authorization")
    if not values:
        raise TokenRejected(
            "missing", "this endpoint needs a bearer token", error="invalid_request"
        )
    if len(values) > 1:
        raise TokenRejected("malformed", "several Authorization headers", error="invalid_request")
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected(
            "malformed",
            "the Authorization header must be 'Bearer <token>'",
            error="invalid_request",
        )
    return await services.oauth.check_bearer(
        token.strip(), caller, datetime.now(UTC), memo=_memo(request)
    )


def _memo(request: Request) -> VerifiedMemo | None:
    """The TLS connection's last verified token (tokens.VerifiedMemo), kept in its own ASGI
    ``tls`` extension dict; None for a proxy's forwarded certificate (one proxy connection
    carries many clients) or without TLS."""
    presented = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(presented, PresentedCertificate) or presented.source != "tls":
        return None
    tls = request.scope.get("extensions", {}).get("tls")
    if tls is None:
        return None
    memo = tls.get(MEMO_KEY)
    if not isinstance(memo, VerifiedMemo):
        memo = tls[MEMO_KEY] = VerifiedMemo()
    return memo


TokenCallerDep = Annotated[TokenCaller, Depends(bearer)]
