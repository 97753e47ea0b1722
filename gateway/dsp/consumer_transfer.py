"""Transfer processes, consumer side (HTTP-pull), and the pull itself.

A local participant asks for a transfer under one of its FINALIZED negotiations
(``POST /v1/dsp/transfers``); the gateway stores it (REQUESTED, audited) and sends the
TransferRequestMessage (``HttpData-PULL``) with its callback address. The provider's
TransferStartMessage arrives on ``/dsp/callback/transfers/<consumerPid>/start`` with a
DataAddress: its endpoint and token are stored (the token bound to this gateway's own
certificate; its hash in the entry), and the transfer is STARTED. A suspension, completion or
termination from the provider moves it and clears the token.

The pull (``POST /v1/dsp/transfers/{pid}/pull``) is made by the gateway, as itself: the query
body goes to the DataAddress endpoint over mTLS (``dsp_client_cert``, the certificate the token
is bound to) with the token; the provider decides and audits it as any Sluis request, and
the answer streams back to the local participant with the provider's receipt headers. When
the stream ends, the consumer's ``exchange-completed`` entry records the bytes and the
provider's audit receipt (``dsp-consumer-pull``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

import httpx

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.dsp.consumer import (
    ConsumerBase,
    ConsumerNegotiations,
    NotReady,
    after,
    entry,
    new_pid,
    pids,
)
from gateway.dsp.messages import HTTP_PULL, MalformedMessage, context
from gateway.dsp.peer import ProviderRefused, ProviderUnreachable
from gateway.dsp.transfer_states import MOVES, TransferMove
from gateway.errors import GatewayError
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.models import DspConsumerTransferRow
from gateway.telemetry import current_trace_id

log = logging.getLogger("sluis.dsp")
RECEIPT: Final = ("sluis-audit-index", "sluis-audit-tree-size", "sluis-audit-checkpoint")
MAX_ERROR: Final = 64 * 1024
_MOVES: Final[dict[str, TransferMove]] = {
    "TransferStartMessage": "start",
    "TransferSuspensionMessage": "suspension",
    "TransferCompletionMessage": "completion",
    "TransferTerminationMessage": "termination",
}


def _address(message: dict[str, Any], row: DspConsumerTransferRow) -> tuple[str, str, int]:
    """The DataAddress's https endpoint, bearer token and lifetime (400 when malformed)."""
    address = message.get("dataAddress")
    props = address.get("endpointProperties") if isinstance(address, dict) else None
    found = {p.get("name"): p.get("value") for p in props if isinstance(p, dict)} if isinstance(
        props, list) else {}  # fmt: skip
    endpoint = address.get("endpoint") if isinstance(address, dict) else None
    auth = found.get("authorization")
    if not (isinstance(endpoint, str) and endpoint.startswith("https://")
            and isinstance(auth, str) and auth.startswith("Bearer ")):  # fmt: skip
        raise MalformedMessage("an HTTP-pull start needs a dataAddress with an https endpoint "
                               "and a Bearer authorization", pids=pids(row))  # fmt: skip
    if httpx.URL(endpoint).host != httpx.URL(row.provider_url).host:
        raise MalformedMessage("the DataAddress endpoint must be on the provider's host",
                               pids=pids(row))  # fmt: skip
    lifetime = found.get("expiresIn")
    seconds = int(lifetime) if isinstance(lifetime, str) and lifetime.isdigit() else 0
    return endpoint[:2048], auth.removeprefix("Bearer ").strip(), seconds


class ConsumerTransfers(ConsumerBase):
    """Consumer-side HTTP-pull transfers: persisted, audited, pulled by the gateway."""

    kind = DspConsumerTransferRow
    what = "transfer"
    moves = MOVES
    path = "transfers"
    termination_type = "TransferTerminationMessage"
    cleared: ClassVar[Mapping[str, Any]] = {
        "endpoint": None, "token": None, "token_expires_at": None
    }  # fmt: skip

    async def request(
        self, caller: AuthenticatedParticipant, negotiations: ConsumerNegotiations,
        negotiation_pid: str, *, actor: Actor,
    ) -> DspConsumerTransferRow:  # fmt: skip
        """A transfer under the caller's FINALIZED negotiation: REQUESTED, then sent."""
        negotiation = await negotiations.get_for(caller, negotiation_pid)
        if negotiation.state != "FINALIZED" or negotiation.agreement_id is None:
            raise NotReady("dsp-negotiation-not-finalized",
                           f"the negotiation is {negotiation.state}, not FINALIZED")  # fmt: skip
        now = datetime.now(UTC)
        row = DspConsumerTransferRow(
            consumer_pid=new_pid(), provider_pid=None, negotiation_pid=negotiation.consumer_pid,
            provider_url=negotiation.provider_url, provider_id=negotiation.provider_id,
            requested_by=caller.participant.id, dataset_id=negotiation.dataset_id,
            agreement_id=negotiation.agreement_id, state="REQUESTED", endpoint=None, token=None,
            token_expires_at=None, reason=None, created_at=now, updated_at=now,
        )  # fmt: skip
        row = await self._add(row, entry(actor, row, "request", "REQUESTED", now))
        message = {
            "@context": context(), "@type": "TransferRequestMessage",
            "consumerPid": row.consumer_pid, "agreementId": row.agreement_id,
            "format": HTTP_PULL, "callbackAddress": self.callback_address,
        }  # fmt: skip
        try:
            answer = await self.peer.call("POST", f"{row.provider_url}/transfers/request", message)
            started: DspConsumerTransferRow = await self._answered(row, answer, "TransferProcess")
        except GatewayError as exc:
            await self._failed(row, exc, actor)
            raise
        return started

    async def provider_message(
        self, caller: AuthenticatedParticipant, pid: str, raw: bytes, kind: str, *, actor: Actor
    ) -> DspConsumerTransferRow:
        """A provider's start, suspension, completion or termination."""
        row, message = await self.from_provider(caller, pid, raw, kind)
        move = _MOVES[kind]
        to = after(row, move, MOVES)
        now = datetime.now(UTC)
        values: dict[str, Any] = {"endpoint": None, "token": None, "token_expires_at": None}
        token = None
        if move == "start":
            endpoint, token, seconds = _address(message, row)
            values = {
                "endpoint": endpoint,
                "token": token,
                "token_expires_at": now + timedelta(seconds=seconds) if seconds else None,
            }
        else:
            code, reason = message.get("code"), message.get("reason")
            values["reason"] = f"{code or move}: {reason or ''}"[:500]
        moved: DspConsumerTransferRow = await self._move(
            row, move, to, entry(actor, row, move, to, now, token=token), now, **values
        )
        return moved

    async def complete(
        self, caller: AuthenticatedParticipant, pid: str, *, actor: Actor
    ) -> DspConsumerTransferRow:
        """The local participant is done: COMPLETED and the TransferCompletionMessage
        committed together (audited, the token dropped), then sent through the outbox."""
        row = await self.get_for(caller, pid)
        to = after(row, "completion", MOVES)
        now = datetime.now(UTC)
        message = {"@context": context(), "@type": "TransferCompletionMessage", **pids(row)}
        done: DspConsumerTransferRow = await self._move(
            row, "completion", to, entry(actor, row, "completion", to, now), now,
            send=(f"transfers/{row.provider_pid}/completion", message),
            endpoint=None, token=None, token_expires_at=None,
        )  # fmt: skip
        return done

    async def pull(
        self, caller: AuthenticatedParticipant, pid: str, body: bytes, *, actor: Actor
    ) -> tuple[httpx.Response, AsyncIterator[bytes]]:
        """Send ``body`` (a Sluis query) to the DataAddress; the provider's answer (headers) and
        its bytes, which end with the consumer's ``exchange-completed`` entry."""
        row = await self.get_for(caller, pid)
        if row.state != "STARTED" or row.endpoint is None or row.token is None:
            raise NotReady("dsp-transfer-not-started", f"the transfer is {row.state}, not STARTED")
        request = await self.peer.request(
            "POST", row.endpoint, content=body,
            headers={"authorization": f"Bearer {row.token}", "content-type": "application/json"},
        )  # fmt: skip
        try:
            response = await self.peer.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{row.endpoint}: {type(exc).__name__}") from exc
        if response.status_code >= 400:  # noqa: PLR2004 - the HTTP error range
            text = b""
            async for chunk in response.aiter_bytes():
                text += chunk
                if len(text) > MAX_ERROR:
                    break
            await response.aclose()
            raise ProviderRefused(response.status_code, text)
        return response, self._relay(row, response, actor)

    async def _relay(
        self, row: DspConsumerTransferRow, response: httpx.Response, actor: Actor
    ) -> AsyncIterator[bytes]:
        size, outcome = 0, "interrupted"
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                yield chunk
            outcome = "complete"
        finally:
            await response.aclose()
            await self.audit.append(_pull_entry(actor, row, response, size, outcome))


def _pull_entry(
    actor: Actor, row: DspConsumerTransferRow, response: httpx.Response, size: int, outcome: str
) -> AuditEntry:
    receipt = tuple(f"provider-{h.removeprefix('sluis-')}:{response.headers.get(h, '-')}"
                    for h in RECEIPT[:2])  # fmt: skip
    return AuditEntry(
        time=datetime.now(UTC), event="exchange-completed", actor=actor,
        dataset=row.dataset_id, action="dsp-consumer-pull",
        target=f"dsp-consumer-transfer:{row.consumer_pid}", bytes=size,
        decision=DecisionRecord(result="permit", reasons=(outcome, *receipt,
                                                          f"provider:{row.provider_url}")),
        trace_id=current_trace_id(),
    )  # fmt: skip
