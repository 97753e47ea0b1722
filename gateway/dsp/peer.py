"""The consumer's calls to a provider's DSP endpoints (and its data endpoint): IO at the edge.

A provider's address is a URL a local user chose, so it goes through the same SSRF guard as
a callback address (``dsp_callback_allow_networks``; https only; the connection pinned to the
vetted address), with the same TLS: the provider's server certificate checked against
``dsp_callback_ca`` (else the system store), this gateway presenting ``dsp_client_cert``, its
participant certificate, which is who it is at the provider. No retries: a local user waits
for the answer, and a failure is theirs to see at once.

Errors: :class:`ProviderAddressRefused` (400, the address), :class:`ProviderUnreachable`
(502, no answer), :class:`ProviderRefused` (502, the provider's problem type and detail
inside), :class:`ProviderInvalid` (502, an answer without the shape its type needs).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final

import httpx

from connectors import ConnectorError
from connectors.http_guard import Network
from gateway.dsp.callbacks import TIMEOUT, pinned
from gateway.dsp.messages import log_message
from gateway.errors import BadRequest, GatewayError

MAX_ANSWER: Final = 8 * 1024 * 1024  # a catalog of many datasets; nothing DSP needs more


class ProviderAddressRefused(BadRequest):
    """A provider URL this gateway will not call (not https, or refused by the SSRF guard)."""

    def __init__(self, detail: str) -> None:
        super().__init__("dsp-provider-address", detail)


class ProviderUnreachable(GatewayError):
    """No answer from the provider (502)."""

    status: ClassVar[int] = 502
    title: ClassVar[str] = "Bad gateway"

    def __init__(self, detail: str) -> None:
        super().__init__("dsp-provider-unreachable", detail)


class ProviderRefused(GatewayError):
    """The provider answered with an error (502; its status, code and reason in the detail)."""

    status: ClassVar[int] = 502
    title: ClassVar[str] = "Bad gateway"

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__("dsp-provider-refused", f"the provider answered {status}: {_why(body)}")
        self.provider_status = status


class ProviderInvalid(GatewayError):
    """The provider answered, but not with the message its type needs (502)."""

    status: ClassVar[int] = 502
    title: ClassVar[str] = "Bad gateway"

    def __init__(self, detail: str) -> None:
        super().__init__("dsp-provider-invalid", detail)


def _why(body: bytes) -> str:
    """The provider's stable reason: its problem type or DSP code, and detail (one line)."""
    try:
        found = json.loads(body)
    except ValueError:
        return "no problem+json body"
    if not isinstance(found, dict):
        return "no problem+json body"
    code = found.get("code") or str(found.get("type", "")).removeprefix("urn:sluis:problem:")
    detail = found.get("detail") or found.get("reason") or ""
    return f"{code} {detail}".strip()[:300] or "no reason given"


class Peer:
    """Calls providers as this gateway (one httpx client, closed with the gateway)."""

    def __init__(self, allowed: tuple[Network, ...], client: httpx.AsyncClient) -> None:
        self.allowed = allowed
        self.client = client

    @classmethod
    def over(cls, allowed: tuple[Network, ...], verify: Any) -> Peer:
        """A peer with its own client over ``verify`` (an ssl.SSLContext)."""
        return cls(allowed, httpx.AsyncClient(
            verify=verify, timeout=TIMEOUT, follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),  # few calls, to many providers
        ))  # fmt: skip

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        """The pinned request; ProviderAddressRefused when the guard refuses ``url``."""
        try:
            return await pinned(self.client, method, url, self.allowed, **kwargs)
        except (ConnectorError, httpx.InvalidURL) as exc:
            reason = exc.public_reason if isinstance(exc, ConnectorError) else str(exc)
            raise ProviderAddressRefused(f"{url}: {reason}") from exc

    async def call(self, method: str, url: str, message: dict[str, Any] | None = None) -> Any:
        """Send ``message`` (or nothing, for GET) and the provider's JSON answer."""
        if message is not None:
            log_message("sent", message)
        request = await self.request(method, url, json=message)
        try:
            response = await self.client.send(request, stream=True)
            try:
                body = await _bounded(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{url}: {type(exc).__name__} {exc}"[:300]) from exc
        if response.status_code >= 400:  # noqa: PLR2004 - the HTTP error range
            raise ProviderRefused(response.status_code, body)
        try:
            answer = json.loads(body) if body else None
        except ValueError as exc:
            raise ProviderInvalid(f"{url}: the answer is not JSON") from exc
        log_message("received", answer)
        return answer

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()


async def _bounded(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER:
            raise ProviderInvalid(f"the answer is larger than {MAX_ANSWER} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
