"""Contract negotiation, consumer side: this gateway asks another provider for a contract.

A local participant with the ``consumer`` role asks (``POST /v1/dsp/negotiations``); the
gateway, as itself (``dsp_client_cert``), reads the provider's Offer from its DSP catalog,
stores the negotiation (REQUESTED, a new consumerPid) with its audit entry, and sends the
ContractRequestMessage with this gateway's callback address (``<public_url>/dsp/callback``).
The provider answers on the callback endpoints, authenticated by its client certificate (the
participant ``provider_id`` of this gateway's registry, by default the dataset's
``dct:publisher``): an agreement (-> AGREED; the gateway verifies at once: VERIFIED, the
ContractAgreementVerificationMessage sent), the FINALIZED event (-> FINALIZED), a
termination (-> TERMINATED) or a counter-offer (-> OFFERED; then at once ACCEPTED and the
ACCEPTED event when it is the Offer the consumer asked for, else TERMINATED with the reason:
:mod:`gateway.dsp.counter_offers`). Every state change commits with its
``agreement-changed`` entry (``target`` ``dsp-consumer-negotiation:<consumerPid>``) before
the next message leaves. A message the state does not allow is 400 and changes nothing.

The consumer's own messages that follow a state change (the verification, a completion, a
termination) go through the provider's outbox (:mod:`gateway.dsp.outbox`): stored in the
transaction of the change, as process ``dsp-consumer-negotiation:<consumerPid>`` or
``dsp-consumer-transfer:<consumerPid>``, sent after the commit and re-sent after a restart
until delivered or given up (audited). None of them carries a token.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import commit
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, hash_token
from gateway.audit.log import AuditLog
from gateway.dsp import consumer_repository as repository
from gateway.dsp.counter_offers import difference
from gateway.dsp.messages import VERSION, MalformedMessage, context, read
from gateway.dsp.negotiation import PURPOSE_KEYS
from gateway.dsp.outbox import Outbox, Outgoing
from gateway.dsp.peer import Peer, ProviderInvalid
from gateway.dsp.states import InvalidTransition
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import DspConsumerNegotiationRow, DspConsumerTransferRow
from gateway.telemetry import current_trace_id

log = logging.getLogger("sluis.dsp")
PARTICIPANT: Final = "urn:sluis:participant:"
CALLBACK_PATH: Final = "/dsp/callback"
SYSTEM: Final = Actor()
_OPEN = frozenset({"REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED"})

#: The consumer side's moves: the states each may start from, and where it leads.
MOVES: Final[dict[str, tuple[frozenset[str], str]]] = {
    "offered": (frozenset({"REQUESTED"}), "OFFERED"),  # the provider's counter-offer
    "accepted": (frozenset({"OFFERED"}), "ACCEPTED"),  # the same Offer as asked for
    "agreed": (frozenset({"REQUESTED", "ACCEPTED"}), "AGREED"),
    "verification": (frozenset({"AGREED"}), "VERIFIED"),
    "finalized": (frozenset({"VERIFIED"}), "FINALIZED"),
    "termination": (_OPEN, "TERMINATED"),
}
Row = DspConsumerNegotiationRow | DspConsumerTransferRow


class ConsumerNotFound(NotFound):
    """No such consumer-side process, or not the caller's (404 either way)."""

    def __init__(self, what: str, pid: str) -> None:
        super().__init__(f"dsp-{what}-not-found", f"no such {what}")
        self.dsp_pids = {"consumerPid": pid[:80]}  # read by gateway.http.problems


class NotReady(GatewayError):
    """The process is not in the state the local request needs (409)."""

    status = 409
    title = "Conflict"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)


def pids(row: Row) -> dict[str, str]:
    """The process ids every message and error carries."""
    return {"providerPid": row.provider_pid or "", "consumerPid": row.consumer_pid}


def new_pid() -> str:
    """A fresh consumerPid."""
    return f"urn:uuid:{uuid.UUID(bytes=secrets.token_bytes(16), version=4)}"


def after(row: Row, move: str, moves: dict[str, tuple[frozenset[str], str]]) -> str:
    """Where ``move`` leads from ``row``'s state; InvalidTransition when it may not."""
    starts, to = moves[move]
    if row.state not in starts:
        raise InvalidTransition(f"the process is {row.state}: {move} is not allowed",
                                pids=pids(row))  # fmt: skip
    return to


def entry(
    actor: Actor, row: Row, move: str, to: str, now: datetime, *,
    reason: str | None = None, token: str | None = None,
) -> AuditEntry:  # fmt: skip
    """The consumer's ``agreement-changed`` entry for ``move`` (a token only as its hash)."""
    is_transfer = isinstance(row, DspConsumerTransferRow)
    kind = "transfer" if is_transfer else "negotiation"
    return AuditEntry(
        time=now, event="agreement-changed", actor=actor, dataset=row.dataset_id,
        action=f"dsp-consumer-{'transfer-' if is_transfer else ''}{move}",
        target=f"dsp-consumer-{kind}:{row.consumer_pid}",
        token_sha256=hash_token(token) if token else None,
        decision=DecisionRecord(
            result="deny" if to == "TERMINATED" else "permit",
            reasons=(to, f"provider:{row.provider_url}", f"providerPid:{row.provider_pid or '-'}",
                     (reason or "")[:500]),
        ),
        trace_id=current_trace_id(),
    )  # fmt: skip


class ConsumerBase:
    """What the consumer's negotiations and transfers share: storage, log, the peer."""

    kind: type[Row]
    what: str
    moves: dict[str, tuple[frozenset[str], str]]
    path: str  # the provider's path for this protocol: negotiations, transfers
    termination_type: str
    cleared: ClassVar[Mapping[str, Any]] = {}  # what a termination clears (a transfer's token)

    def __init__(
        self, db: Database, audit: AuditLog, peer: Peer, *, public_url: str,
        outbox: Outbox,
    ) -> None:  # fmt: skip
        self.db = db
        self.audit = audit
        self.peer = peer
        self.outbox = outbox  # the consumer's own messages after a state change
        self.callback_address = public_url.rstrip("/") + CALLBACK_PATH

    async def _get(self, pid: str) -> Any:
        async with self.db.session() as session:
            return await session.get(self.kind, pid[:80])

    async def get_for(self, caller: AuthenticatedParticipant, pid: str) -> Any:
        """The local caller's process; 404 for an unknown one or someone else's."""
        row = await self._get(pid)
        if row is None or row.requested_by != caller.participant.id:
            raise ConsumerNotFound(self.what, pid)
        return row

    async def from_provider(
        self, caller: AuthenticatedParticipant, pid: str, raw: bytes, kind: str,
        strings: tuple[str, ...] = (),
    ) -> tuple[Any, dict[str, Any]]:  # fmt: skip
        """A provider's callback ``kind`` on ``pid``: the row and the message.

        404 unless the process exists and the caller is its provider; 400 for a malformed
        message or one naming another process. Nothing is changed here.
        """
        message = read(raw, kind, strings=("providerPid", "consumerPid", *strings))
        row = await self._get(pid)
        if row is None or row.provider_id != caller.participant.id:
            raise ConsumerNotFound(self.what, pid)
        given = message["providerPid"]
        if message["consumerPid"] != row.consumer_pid or row.provider_pid not in (None, given):
            raise MalformedMessage(f"providerPid and consumerPid must name this {self.what}",
                                   pids=pids(row))  # fmt: skip
        if row.provider_pid is None:  # the callback came before the provider's answer
            async with self.db.session() as session:
                await repository.set_provider_pid(session, self.kind, row.consumer_pid, given)
            row = await self._get(pid)
        return row, message

    async def _move(
        self, row: Row, move: str, to: str, audit_entry: AuditEntry, now: datetime, *,
        send: tuple[str, dict[str, Any]] | None = None, **values: Any,
    ) -> Any:  # fmt: skip
        """Persist the move with its entry and the message ``send`` (path under the
        provider's DSP base, message) in the outbox, then send it; InvalidTransition if the
        row moved meanwhile."""
        stored: list[int] = []

        async def change(session: AsyncSession) -> Row:
            moved = await repository.move(session, self.kind, row.consumer_pid, row.state, to,
                                          now=now, **values)  # fmt: skip
            if moved is None:
                raise InvalidTransition(f"the {self.what} changed meanwhile: {move} is not "
                                        "allowed", pids=pids(row))  # fmt: skip
            if send is not None:
                stored.append(await self._outgoing(row, *send).put(session, now))
            return moved

        done = await commit(self.audit, audit_entry, change)
        for row_id in stored:  # one round now; the outbox's loop does the rest
            await self.outbox.deliver(row_id)
        return done

    def _outgoing(self, row: Row, path: str, message: dict[str, Any]) -> Outgoing:
        return Outgoing(
            process=f"dsp-consumer-{self.what}:{row.consumer_pid}", dataset_id=row.dataset_id,
            address=row.provider_url, path=path, message=message,
        )  # fmt: skip

    async def _add(self, row: Row, audit_entry: AuditEntry) -> Any:
        async def change(session: AsyncSession) -> Row:
            await repository.add(session, row)
            return row

        return await commit(self.audit, audit_entry, change)

    async def _answered(self, row: Row, answer: Any, expected: str) -> Any:
        """Check the provider's answer (a ContractNegotiation or TransferProcess of ours) and
        keep its providerPid."""
        if not (isinstance(answer, dict) and answer.get("@type") in (expected,
                                                                     f"dspace:{expected}")
                and isinstance(answer.get("providerPid"), str)
                and answer.get("consumerPid") == row.consumer_pid):  # fmt: skip
            raise ProviderInvalid(f"the provider's answer is not a {expected} of this process")
        async with self.db.session() as session:
            await repository.set_provider_pid(session, self.kind, row.consumer_pid,
                                              answer["providerPid"][:256])  # fmt: skip
        return await self._get(row.consumer_pid)

    async def terminate(
        self, caller: AuthenticatedParticipant, pid: str, reason: str, *, actor: Actor
    ) -> Any:
        """The local participant ends the process: TERMINATED and the termination message
        to the provider committed together (audited), then sent through the outbox."""
        row = await self.get_for(caller, pid)
        to = after(row, "termination", self.moves)
        now = datetime.now(UTC)
        send = None
        if row.provider_pid is not None:  # the provider never answered: nothing to address
            message = {"@context": context(), "@type": self.termination_type, **pids(row),
                       "code": "terminated-by-consumer", "reason": [reason[:500]]}  # fmt: skip
            send = (f"{self.path}/{row.provider_pid}/termination", message)
        return await self._move(
            row, "termination", to, entry(actor, row, "termination", to, now, reason=reason),
            now, send=send, reason=reason[:500], **self.cleared,
        )  # fmt: skip

    async def _failed(self, row: Row, exc: GatewayError, actor: Actor) -> None:
        """The provider refused or could not be reached: the process ends (audited), unless a
        callback moved it meanwhile (then the provider did take it)."""
        now = datetime.now(UTC)
        reason = f"{exc.code}: {exc.detail}"
        try:
            await self._move(row, "termination", "TERMINATED",
                             entry(actor, row, "termination", "TERMINATED", now, reason=reason),
                             now, reason=reason[:500])  # fmt: skip
        except InvalidTransition:
            log.warning("dsp consumer: %s moved on although sending failed: %s",
                        row.consumer_pid, reason)  # fmt: skip


async def dsp_base(peer: Peer, provider: str) -> str:
    """The provider's DSP 2025-1 base URL, from its ``/.well-known/dspace-version``."""
    root = provider.rstrip("/")
    found = await peer.call("GET", f"{root}/.well-known/dspace-version")
    versions = found.get("protocolVersions") if isinstance(found, dict) else None
    for version in versions if isinstance(versions, list) else []:
        if isinstance(version, dict) and version.get("version") == VERSION:
            path = version.get("path")
            if isinstance(path, str) and path.startswith("/") and "//" not in path:
                return root + path.rstrip("/")
    raise ProviderInvalid(f"{root} offers no DSP {VERSION} (its /.well-known/dspace-version)")


def provider_of(dataset: dict[str, Any]) -> str | None:
    """The Sluis participant id of a Dataset's ``dct:publisher``, if it names one."""
    publisher = dataset.get("dct:publisher")
    found = publisher.get("@id") if isinstance(publisher, dict) else publisher
    if isinstance(found, str) and found.startswith(PARTICIPANT):
        return found.removeprefix(PARTICIPANT)[:64]
    return None


def first_offer(dataset: dict[str, Any]) -> dict[str, Any]:
    """The Dataset's (first) Offer; ProviderInvalid when it has none."""
    offers = dataset.get("hasPolicy")
    offers = offers if isinstance(offers, list) else [offers]
    for found in offers:
        if isinstance(found, dict) and isinstance(found.get("@id"), str):
            return found
    raise ProviderInvalid("the provider's Dataset carries no Offer")


def narrowed(offer: dict[str, Any], purpose: str) -> dict[str, Any]:
    """``offer`` with each permission's ``odrl:purpose`` constraint narrowed to ``purpose``
    (how the consumer names the purpose it asks for); BadRequest when the Offer has none."""
    found = False
    permissions = []
    for permission in offer.get("permission") or []:
        if not isinstance(permission, dict):
            permissions.append(permission)
            continue
        constraints = []
        for c in permission.get("constraint") or []:
            purposeful = isinstance(c, dict) and c.get("leftOperand") in PURPOSE_KEYS
            found = found or purposeful
            constraints.append({**c, "rightOperand": {"@id": purpose}} if purposeful else c)
        permissions.append({**permission, "constraint": constraints} if constraints
                           else permission)  # fmt: skip
    if not found:
        raise BadRequest(
            "dsp-purpose-not-offered",
            "the Offer has no odrl:purpose constraint to narrow: leave out purpose",
        )
    return {**offer, "permission": permissions}


class ConsumerNegotiations(ConsumerBase):
    """Consumer-side negotiations: persisted, audited, driven by the provider's callbacks."""

    kind = DspConsumerNegotiationRow
    what = "negotiation"
    moves = MOVES
    path = "negotiations"
    termination_type = "ContractNegotiationTerminationMessage"

    def __init__(
        self, db: Database, audit: AuditLog, peer: Peer, *, public_url: str, outbox: Outbox
    ) -> None:
        super().__init__(db, audit, peer, public_url=public_url, outbox=outbox)
        outbox.on_start.append(self.resume)

    async def catalog(self, provider: str) -> Any:
        """The provider's DSP Catalog (a CatalogRequestMessage, no filter)."""
        base = await dsp_base(self.peer, provider)
        message = {"@context": context(), "@type": "CatalogRequestMessage"}
        return _typed(await self.peer.call("POST", f"{base}/catalog/request", message), "Catalog")

    async def dataset(self, provider: str, dataset_id: str) -> Any:
        """One Dataset of the provider's DSP catalog."""
        base = await dsp_base(self.peer, provider)
        return await self._dataset(base, dataset_id)

    async def _dataset(self, base: str, dataset_id: str) -> dict[str, Any]:
        if not dataset_id or "/" in dataset_id or len(dataset_id) > 256:  # noqa: PLR2004
            raise BadRequest("dsp-malformed-message", "a dataset id is one path segment")
        found = await self.peer.call("GET", f"{base}/catalog/datasets/{dataset_id}")
        dataset: dict[str, Any] = _typed(found, "Dataset")
        return dataset

    async def request(
        self, caller: AuthenticatedParticipant, provider: str, dataset_id: str, *,
        provider_id: str | None, purpose: str | None, actor: Actor,
    ) -> DspConsumerNegotiationRow:  # fmt: skip
        """Ask ``provider`` for a contract on ``dataset_id`` with its Offer (its purpose
        narrowed to ``purpose`` when given): REQUESTED."""
        base = await dsp_base(self.peer, provider)
        dataset = await self._dataset(base, dataset_id)
        offer = first_offer(dataset)
        if purpose is not None:
            offer = narrowed(offer, purpose)
        expected = provider_id or provider_of(dataset)
        if expected is None:
            raise BadRequest(
                "dsp-provider-participant",
                "the Dataset names no Sluis publisher: give provider_participant",
            )
        now = datetime.now(UTC)
        row = DspConsumerNegotiationRow(
            consumer_pid=new_pid(), provider_pid=None, provider_url=base, provider_id=expected,
            requested_by=caller.participant.id, dataset_id=dataset_id,
            offer_id=offer["@id"][:512], state="REQUESTED", agreement_id=None, reason=None,
            created_at=now, updated_at=now, offer={**offer, "target": dataset_id},
        )  # fmt: skip
        row = await self._add(row, entry(actor, row, "request", "REQUESTED", now))
        message = {
            "@context": context(), "@type": "ContractRequestMessage",
            "consumerPid": row.consumer_pid, "offer": row.offer,
            "callbackAddress": self.callback_address,
        }  # fmt: skip
        try:
            answer = await self.peer.call("POST", f"{base}/negotiations/request", message)
            asked: DspConsumerNegotiationRow = await self._answered(
                row, answer, "ContractNegotiation"
            )
        except GatewayError as exc:
            await self._failed(row, exc, actor)
            raise
        return asked

    async def provider_message(
        self, caller: AuthenticatedParticipant, pid: str, raw: bytes, kind: str, *, actor: Actor
    ) -> DspConsumerNegotiationRow:
        """A provider's callback: agreement, event (FINALIZED), termination or offer."""
        row, message = await self.from_provider(caller, pid, raw, kind)
        move, values = _negotiation_move(kind, message, row)
        to = after(row, move, MOVES)
        now = datetime.now(UTC)
        reason = values.get("reason")
        moved: DspConsumerNegotiationRow = await self._move(
            row, move, to, entry(actor, row, move, to, now, reason=reason), now, **values
        )
        return moved

    async def proceed(self, pid: str) -> None:
        """This side's move after a provider's message (run after the answer): verify an
        agreement, answer a counter-offer."""
        row = await self._get(pid)
        if row is not None and row.state == "AGREED":
            await self.verify(pid)
        elif row is not None and row.state == "OFFERED":
            await self.answer_offer(pid)

    async def answer_offer(self, pid: str) -> None:
        """After OFFERED: ACCEPTED and the ACCEPTED event when the counter-offer was the
        Offer asked for (``reason`` None), else TERMINATED and the termination, each
        committed with its message (sent through the outbox)."""
        row = await self._get(pid)
        if row is None or row.state != "OFFERED":
            return
        now = datetime.now(UTC)
        if row.reason is None:
            message = {"@context": context(), "@type": "ContractNegotiationEventMessage",
                       **pids(row), "eventType": "ACCEPTED"}  # fmt: skip
            await self._move(
                row, "accepted", "ACCEPTED", entry(SYSTEM, row, "accepted", "ACCEPTED", now),
                now, send=(f"negotiations/{row.provider_pid}/events", message),
            )  # fmt: skip
            return
        message = {"@context": context(), "@type": self.termination_type, **pids(row),
                   "code": "counter-offer-refused", "reason": [row.reason]}  # fmt: skip
        await self._move(
            row, "termination", "TERMINATED",
            entry(SYSTEM, row, "termination", "TERMINATED", now, reason=row.reason), now,
            send=(f"negotiations/{row.provider_pid}/termination", message),
        )  # fmt: skip

    async def verify(self, pid: str) -> None:
        """After AGREED: VERIFIED and the verification to the provider committed together,
        then sent through the outbox (re-sent after a restart until delivered or given up)."""
        row = await self._get(pid)
        if row is None or row.state != "AGREED":
            return
        now = datetime.now(UTC)
        message = {"@context": context(), "@type": "ContractAgreementVerificationMessage",
                   **pids(row)}  # fmt: skip
        await self._move(
            row, "verification", "VERIFIED", entry(SYSTEM, row, "verification", "VERIFIED", now),
            now, send=(f"negotiations/{row.provider_pid}/agreement/verification", message),
        )  # fmt: skip

    async def resume(self) -> int:
        """Take this side's move on every negotiation a stop left AGREED or OFFERED (the
        provider's message committed, the gateway gone before its answer was stored); how
        many (run at start)."""
        async with self.db.session() as session:
            waiting = await repository.waiting(session)
        for pid in waiting:
            await self.proceed(pid)
        return len(waiting)


def _negotiation_move(
    kind: str, message: dict[str, Any], row: DspConsumerNegotiationRow
) -> tuple[str, dict[str, Any]]:
    """The move a provider's message makes, and the values it stores (400 when malformed)."""
    if kind == "ContractAgreementMessage":
        agreement = message.get("agreement")
        if not isinstance(agreement, dict) or not isinstance(agreement.get("@id"), str):
            raise MalformedMessage("agreement must be an object with an @id", pids=pids(row))
        if agreement.get("target") != row.dataset_id:
            raise MalformedMessage("the agreement's target is not the dataset asked for",
                                   pids=pids(row))  # fmt: skip
        return "agreed", {"agreement_id": agreement["@id"][:512]}
    if kind == "ContractNegotiationEventMessage":
        if message.get("eventType") not in ("FINALIZED", "dspace:FINALIZED"):
            raise MalformedMessage("a provider's eventType is FINALIZED", pids=pids(row))
        return "finalized", {}
    if kind == "ContractOfferMessage":
        offer = message.get("offer")
        if not isinstance(offer, dict) or not isinstance(offer.get("@id"), str):
            raise MalformedMessage("offer must be an object with an @id", pids=pids(row))
        why = difference(row.offer, offer, row.dataset_id)
        return "offered", {"offer_id": offer["@id"][:512], "reason": why}
    return "termination", {"reason": _reason(message)}


def _reason(message: dict[str, Any]) -> str:
    found = message.get("reason")
    text = "; ".join(str(r) for r in found) if isinstance(found, list) else str(found or "")
    code = message.get("code")
    return (f"{code}: {text}" if code else text or "terminated by the provider")[:500]


def _typed(found: Any, expected: str) -> Any:
    if not isinstance(found, dict) or found.get("@type") not in (expected, f"dspace:{expected}"):
        raise ProviderInvalid(f"the provider's answer is not a {expected}")
    return found
