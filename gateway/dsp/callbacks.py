"""The provider's messages to a consumer's ``callbackAddress``: vetted, pinned, retried.

A callback address is a URL the consumer chose, so it goes through the connectors' SSRF
guard (:func:`connectors.http_guard.resolve`): every address its host resolves to must be
public or inside ``dsp_callback_allow_networks``, and the connection is made to the vetted
address (the name kept for SNI and certificate checks), so a DNS answer that changes in
between cannot redirect it. Only ``https`` is used. :func:`check` runs when a negotiation
starts (a refused address is a 400, nothing stored); :meth:`Callbacks.send` checks again at
each attempt.

Sending follows the state: the caller persists the new state and the message together
(:mod:`gateway.dsp.outbox`) and sends after. One send is a round of attempts with exponential
backoff on a connection failure, a 5xx, 408 or 429; other 4xx end it. A round that fails
leaves the message in the outbox for a later round, also after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, Final, Literal

import httpx

from connectors import ConnectorError
from connectors.http_guard import Network, check_base_url, resolve
from gateway.dsp.messages import log_message
from gateway.errors import BadRequest

log = logging.getLogger("sluis.dsp")
RETRY_STATUS: Final = frozenset({408, 429})
TIMEOUT: Final = 10.0
Outcome = Literal["delivered", "refused", "unreachable"]  # refused: a final 4xx


class CallbackRefused(BadRequest):
    """A ``callbackAddress`` Sluis will not call (400; nothing stored)."""

    def __init__(self, detail: str, *, pids: dict[str, str]) -> None:
        super().__init__("dsp-callback-refused", detail)
        self.dsp_pids = pids  # read by gateway.http.problems


def join(base: str, path: str) -> str:
    """``base`` + ``path``, with or without a trailing ``/`` on ``base`` (DSP asks for both)."""
    return base.rstrip("/") + "/" + path.lstrip("/")


async def check(address: str, allowed: tuple[Network, ...], *, pids: dict[str, str]) -> None:
    """CallbackRefused unless ``address`` is an https URL whose host passes the SSRF guard."""
    try:
        url = check_base_url(address)
        if url.scheme != "https":
            raise CallbackRefused("callbackAddress must be an https URL", pids=pids)
        await resolve(url.host, url.port or 443, allowed)
    except ConnectorError as exc:
        raise CallbackRefused(f"callbackAddress refused: {exc.public_reason}", pids=pids) from exc


async def pinned(
    client: httpx.AsyncClient,
    method: str,
    target: str,
    allowed: tuple[Network, ...],
    **kwargs: Any,
) -> httpx.Request:
    """A request to ``target`` (https only) sent to the address the SSRF guard vetted, the
    name kept for the Host header, SNI and the certificate check. ConnectorError when the
    guard refuses it."""
    url = httpx.URL(target)
    if url.scheme != "https":
        raise ConnectorError("a DSP peer's address must be https")  # refused at the start too
    address = await resolve(url.host, url.port or 443, allowed)
    headers = {**kwargs.pop("headers", {}), "host": url.netloc.decode("ascii")}
    request = client.build_request(
        method, url.copy_with(host=str(address)), headers=headers, **kwargs
    )
    request.extensions["sni_hostname"] = url.host
    return request


class Callbacks:
    """Sends DSP messages to consumers (one httpx client, closed with the gateway)."""

    def __init__(
        self,
        allowed: tuple[Network, ...],
        verify: ssl.SSLContext,
        *,
        attempts: int = 5,
        first_delay: float = 0.25,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.allowed = allowed
        self.attempts = attempts
        self.first_delay = first_delay
        self._sleep = sleep
        self._client = httpx.AsyncClient(verify=verify, timeout=TIMEOUT, follow_redirects=False)

    async def send(self, base: str, path: str, message: dict[str, Any]) -> Outcome:
        """POST ``message`` to ``base``/``path``: delivered (2xx), refused (a final 4xx) or
        unreachable (every attempt failed)."""
        target = join(base, path)
        for attempt in range(self.attempts):
            try:
                status = await self._post(target, message)
            except (httpx.HTTPError, ConnectorError, OSError) as exc:
                log.warning("dsp callback %s: attempt %d failed: %r", target, attempt + 1, exc)
            else:
                if 200 <= status < 300:  # noqa: PLR2004 - the success range
                    return "delivered"
                log.warning("dsp callback %s: attempt %d: HTTP %d", target, attempt + 1, status)
                if status < 500 and status not in RETRY_STATUS:  # noqa: PLR2004 - 4xx: final
                    return "refused"
            if attempt + 1 < self.attempts:
                await self._sleep(self.first_delay * 2**attempt)
        log.warning("dsp callback %s: not delivered after %d attempts", target, self.attempts)
        return "unreachable"

    async def _post(self, target: str, message: dict[str, Any]) -> int:
        log_message("sent", message)
        request = await pinned(self._client, "POST", target, self.allowed, json=message)
        response = await self._client.send(request)
        await response.aclose()
        return response.status_code

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()
