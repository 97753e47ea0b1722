"""Request body size cap, enforced on the declared length and on the bytes actually read.

The same 413 ``body-too-large`` problem whatever the framing: a ``Content-Length`` over the
cap is refused before the app runs; a chunked (or lying) body is counted as it is read, and
the count raises :class:`BodyTooLarge`. That is an ``HTTPException`` on purpose: FastAPI
turns any other exception raised while it parses a body parameter into ``400 "There was an
error parsing the body"``, but re-raises ``HTTPException`` for the problem handlers.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.problems import problem

_CLOSE = {"Connection": "close"}


def _detail(max_bytes: int) -> str:
    return f"request bodies are limited to {max_bytes} bytes"


class BodyTooLarge(HTTPException):
    """Raised inside ``receive`` once the body passes the cap; answered as 413 problem+json."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _detail(max_bytes), headers=_CLOSE)


class BodyLimitMiddleware:
    """Answer 413 problem+json for bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._reject(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "body-too-large",
            "Request body too large",
            _detail(self.max_bytes),
            instance=scope["path"],
            headers=_CLOSE,
        )
        await response(scope, receive, send)
