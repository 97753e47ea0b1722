"""429 for a source that has been refused too often in the current window (issue 11).

A pure ASGI middleware: it asks :meth:`gateway.ratelimit.service.Limits.blocked` (a dict
lookup, no IO) about the socket peer and, while the source is throttled, answers
``429 rate-limited`` with ``Retry-After`` before any certificate, token or database work.
Each such answer is tallied into the source's refusal summary. Health probes pass.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http.problems import rate_limited

_PROBES = frozenset({"/healthz", "/readyz"})


class RefusalThrottleMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") not in _PROBES:
            limits = getattr(getattr(scope["app"].state, "services", None), "limits", None)
            client = scope.get("client")
            retry_after = limits.blocked(client[0] if client else None) if limits else None
            if retry_after is not None:
                response = rate_limited(retry_after, instance=str(scope.get("path", "")))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
