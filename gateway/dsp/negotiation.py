"""Contract negotiation, provider side, over Sluis agreements.

A ContractRequestMessage names an Offer from the DSP catalog (``urn:sluis:offer:<dataset>:
<policy hash>``, the current version only) and asks for a Sluis agreement through
:class:`gateway.agreements.service.AgreementService`: the same policy check, the same
``agreement-changed`` entry. The negotiation's own state changes commit with their own
``agreement-changed`` entries (:mod:`gateway.dsp.entries`); the message to the consumer's
``callbackAddress`` is stored in the same transaction and sent after the commit, again after a
restart until delivered or given up (:mod:`gateway.dsp.outbox`).

Where the agreement stands decides the provider's move (:meth:`NegotiationService.follow`):
active (the dataset approves automatically, or the provider approved) -> AGREED with a
ContractAgreementMessage; rejected by the policy or the provider -> TERMINATED with a
termination message; requested -> the negotiation waits in REQUESTED until the provider
decides on ``/v1/agreements/{id}/approve`` or ``/reject``. The consumer's verification
moves it to VERIFIED and Sluis finalizes at once (FINALIZED event): a FINALIZED negotiation
is an active Sluis agreement. Sluis makes no counter-offers: the agreement is always the
offered policy, whatever else the consumer's copy of the Offer says.

The purpose a Sluis agreement needs is the ``odrl:purpose`` the consumer's Offer narrows to
one value, else the one purpose the policy allows; otherwise the request is refused
(``dsp-purpose-required``).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.admin.changes import commit
from gateway.agreements import repository as agreements_repo
from gateway.agreements.schemas import Agreement, AgreementRequest
from gateway.agreements.service import AgreementService, Requested
from gateway.audit.entry import Actor
from gateway.audit.log import AuditLog
from gateway.datasets.service import DatasetService
from gateway.dsp import outgoing, repository
from gateway.dsp.callbacks import Callbacks, check
from gateway.dsp.entries import negotiation_entry
from gateway.dsp.messages import MalformedMessage, read
from gateway.dsp.offers import OfferError, offer, parse_offer_id
from gateway.dsp.outbox import Outbox, Outgoing
from gateway.dsp.states import InvalidTransition, Move, after
from gateway.errors import BadRequest, NotFound
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import DspNegotiationRow
from policies import SLUIS_PROFILE, Constraint, Iri
from policies.vocab import ODRL

log = logging.getLogger("sluis.dsp")
PURPOSE = ODRL + "purpose"
PURPOSE_KEYS = frozenset({"odrl:purpose", "purpose", PURPOSE})
SYSTEM = Actor()  # the gateway itself: the provider's moves that follow a decision


def _sole_value(value: Any) -> str | None:
    """A right operand naming one purpose (``{"@id": x}``, ``x`` or a list of one)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("@id")
    return value if isinstance(value, str) and value else None


def asked_purpose(message_offer: dict[str, Any]) -> str | None:
    """The one purpose the consumer's copy of the Offer names, if it names exactly one."""
    found = set()
    permissions = message_offer.get("permission")
    for permission in permissions if isinstance(permissions, list) else []:
        constraints = permission.get("constraint") if isinstance(permission, dict) else None
        for c in constraints if isinstance(constraints, list) else []:
            if isinstance(c, dict) and c.get("leftOperand") in PURPOSE_KEYS:
                found.add(_sole_value(c.get("rightOperand")))
    return found.pop() if len(found) == 1 and None not in found else None


class NegotiationService:
    """Provider-side negotiations: persisted, audited, mapped onto Sluis agreements."""

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        agreements: AgreementService,
        audit: AuditLog,
        callbacks: Callbacks,
        *,
        outbox: Outbox,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.agreements = agreements
        self.audit = audit
        self.callbacks = callbacks
        self.outbox = outbox

    # -- the consumer's messages ------------------------------------------------------

    async def request(
        self, caller: AuthenticatedParticipant, raw: bytes, *, now: datetime, actor: Actor
    ) -> DspNegotiationRow:
        """An initiating ContractRequestMessage: a new negotiation, REQUESTED (201)."""
        message = read(raw, "ContractRequestMessage", strings=("consumerPid", "callbackAddress"))
        given = {"consumerPid": message["consumerPid"]}
        if "providerPid" in message:
            raise MalformedMessage("an initiating request has no providerPid", pids=given)
        asked = message.get("offer")
        if not isinstance(asked, dict) or not isinstance(asked.get("@id"), str):
            raise MalformedMessage("offer must be an object with an @id", pids=given)
        dataset_id, digest = self._offer_of(asked["@id"], given)
        dataset = await self.datasets.get(dataset_id)
        if dataset.policy_hash != digest:
            raise BadRequest("dsp-offer-outdated", "the Offer is not the dataset's current one")
        await check(message["callbackAddress"], self.callbacks.allowed, pids=given)
        purpose = asked_purpose(asked) or await self._policy_purpose(dataset.policy_hash)
        if purpose is None:
            raise BadRequest("dsp-purpose-required", "name one odrl:purpose in the Offer")
        try:
            body = AgreementRequest(dataset=dataset.id, purpose=purpose)
        except ValueError as exc:  # pydantic: a purpose that is not an IRI
            raise BadRequest("dsp-purpose-required", "odrl:purpose must be one IRI") from exc
        asked_for = await self.agreements.request(caller, body, now=now, actor=actor)
        return await self._start(caller, message, asked["@id"], asked_for, now=now, actor=actor)

    @staticmethod
    def _offer_of(text: str, given: dict[str, str]) -> tuple[str, str]:
        parsed = parse_offer_id(text)
        if parsed is None:
            raise MalformedMessage("offer @id is not an Offer of this catalog", pids=given)
        return parsed

    async def _policy_purpose(self, digest: str) -> str | None:
        policy = await self.datasets.policy(digest)
        found = {
            str(c.right_operand[0])
            for rule in policy.permissions
            for c in rule.constraints
            if isinstance(c, Constraint)
            and c.left_operand == PURPOSE
            and len(c.right_operand) == 1
            and isinstance(c.right_operand[0], Iri | str)
        }
        return found.pop() if len(found) == 1 else None

    async def _start(
        self,
        caller: AuthenticatedParticipant,
        message: dict[str, Any],
        offer_id: str,
        asked: Requested,
        *,
        now: datetime,
        actor: Actor,
    ) -> DspNegotiationRow:
        row = DspNegotiationRow(
            provider_pid=f"urn:uuid:{_uuid4()}", consumer_pid=message["consumerPid"],
            consumer_id=caller.participant.id, dataset_id=asked.agreement.dataset_id,
            offer_id=offer_id, callback_address=message["callbackAddress"], state="REQUESTED",
            agreement_id=asked.agreement.id, reason=None, created_at=now, updated_at=now,
        )  # fmt: skip
        entry = negotiation_entry(actor, row, "request", state="REQUESTED", reason=None, now=now)

        async def change(session: Any) -> DspNegotiationRow:
            await repository.add(session, row)
            return row

        return await commit(self.audit, entry, change)

    async def get_for(self, caller: AuthenticatedParticipant, pid: str) -> DspNegotiationRow:
        """The caller's negotiation; NotFound for an unknown one or someone else's."""
        async with self.db.session() as session:
            row = await repository.get(session, pid[:80])
        if row is None or row.consumer_id != caller.participant.id:
            raise _not_found(pid)
        return row

    async def consumer_message(
        self,
        caller: AuthenticatedParticipant,
        pid: str,
        raw: bytes,
        kind: str,
        *,
        now: datetime,
        actor: Actor,
    ) -> DspNegotiationRow:
        """A consumer's message on an existing negotiation (``kind`` is its @type)."""
        message = read(raw, kind, strings=("providerPid", "consumerPid"))
        row = await self.get_for(caller, pid)
        if message["providerPid"] != pid or message["consumerPid"] != row.consumer_pid:
            raise MalformedMessage("providerPid and consumerPid must name this negotiation",
                                   pids=outgoing.pids(row))  # fmt: skip
        move = self._move_of(kind, message, row)
        reason = _reasons(message) if move == "termination" else None
        moved = await self._move(row, move, reason=reason, now=now, actor=actor)
        if move == "termination" and row.agreement_id is not None:
            await self._end_agreement(caller, row.agreement_id, reason, now=now, actor=actor)
        return moved

    @staticmethod
    def _move_of(kind: str, message: dict[str, Any], row: DspNegotiationRow) -> Move:
        if kind == "ContractNegotiationEventMessage":
            if message.get("eventType") not in ("ACCEPTED", "dspace:ACCEPTED"):
                raise MalformedMessage("a consumer's eventType is ACCEPTED",
                                       pids=outgoing.pids(row))  # fmt: skip
            return "accepted"
        moves: dict[str, Move] = {
            "ContractRequestMessage": "request",
            "ContractAgreementVerificationMessage": "verification",
            "ContractNegotiationTerminationMessage": "termination",
        }
        return moves[kind]

    async def _end_agreement(
        self,
        caller: AuthenticatedParticipant,
        agreement_id: str,
        reason: str | None,
        *,
        now: datetime,
        actor: Actor,
    ) -> None:
        """The consumer ended the negotiation: its live Sluis agreement ends too."""
        agreement = await self.agreements.get_for(agreement_id, caller)
        if agreement.state in ("requested", "active"):
            await self.agreements.terminate(
                agreement_id, caller, reason or "terminated through DSP", now=now, actor=actor
            )

    # -- the provider's moves -------------------------------------------------------------

    async def _move(
        self,
        row: DspNegotiationRow,
        move: Move,
        *,
        reason: str | None,
        now: datetime,
        actor: Actor,
        refused: bool = False,
        send: tuple[str, dict[str, Any]] | None = None,
    ) -> DspNegotiationRow:
        """Persist ``move`` (with its entry, and the message ``send`` names as (path, message)
        in the outbox), then send that message; InvalidTransition when the state forbids it."""
        seen = row.state
        to = after(seen, move, pids=outgoing.pids(row))
        entry = negotiation_entry(actor, row, move, state=to, reason=reason, now=now,
                                  refused=refused)  # fmt: skip
        stored: list[int] = []

        async def change(session: Any) -> DspNegotiationRow:
            if not await repository.move(session, row.provider_pid, seen, to, reason=reason,
                                         now=now):  # fmt: skip
                raise InvalidTransition(
                    f"the negotiation changed meanwhile: {move} is not allowed",
                    pids=outgoing.pids(row),
                )
            if send is not None:
                stored.append(await _outgoing(row, *send).put(session, now))
            found = await repository.get(session, row.provider_pid)
            assert found is not None  # noqa: S101 - negotiations are never deleted
            await session.refresh(found)
            return found

        moved = await commit(self.audit, entry, change)
        if stored:  # the last run's row: the audit writer may run an effect again
            await self.outbox.deliver(stored[-1])
        return moved

    async def follow(self, pid: str) -> None:
        """The provider's move after the consumer's: agree, terminate, finalize, or wait."""
        async with self.db.session() as session:
            row = await repository.get(session, pid)
        if row is None or row.agreement_id is None:
            return
        if row.state == "VERIFIED":
            await self._move(row, "finalize", reason=None, now=_now(), actor=SYSTEM,
                             send=("events", outgoing.event_message(row, "FINALIZED")))  # fmt: skip
        elif row.state == "REQUESTED":
            async with self.db.session() as session:
                agreement = await agreements_repo.get(session, row.agreement_id)
            if agreement is not None:
                await self._decided(row, agreement.state, agreement.reason)

    async def _decided(self, row: DspNegotiationRow, state: str, reason: str | None) -> None:
        now = _now()
        if state == "active":
            message = outgoing.agreement_message(
                row, await self._offer(row), assigner=await self._assigner(row), when=now
            )
            await self._move(row, "agree", reason=None, now=now, actor=SYSTEM,
                             send=("agreement", message))  # fmt: skip
        elif state in ("rejected", "revoked", "terminated"):
            why = "the agreement was not granted"
            message = outgoing.termination_message(row, "agreement-" + state, why)
            await self._move(row, "termination", reason=reason or why, now=now, actor=SYSTEM,
                             refused=True, send=("termination", message))  # fmt: skip

    async def agreement_decided(self, agreement: Agreement) -> None:
        """The provider decided a Sluis agreement: negotiations waiting on it move."""
        async with self.db.session() as session:
            waiting: Sequence[DspNegotiationRow] = await repository.waiting_on(
                session, agreement.id
            )
        for row in waiting:
            await self._decided(row, agreement.state, agreement.reason)

    async def _offer(self, row: DspNegotiationRow) -> dict[str, Any]:
        parsed = parse_offer_id(row.offer_id)
        assert parsed is not None  # noqa: S101 - stored only after it parsed
        policy = await self.datasets.policy(parsed[1])
        try:
            return offer(policy, row.dataset_id, parsed[1], SLUIS_PROFILE.iri)
        except OfferError:  # it was offered, so it converts; fail closed all the same
            log.exception("dsp: the agreed offer %s no longer converts", row.offer_id)
            raise

    async def _assigner(self, row: DspNegotiationRow) -> str:
        dataset = await self.datasets.get(row.dataset_id)
        return f"urn:sluis:participant:{dataset.provider_id}"


def _outgoing(row: DspNegotiationRow, path: str, message: dict[str, Any]) -> Outgoing:
    return Outgoing(
        process=f"dsp-negotiation:{row.provider_pid}",
        dataset_id=row.dataset_id,
        address=row.callback_address,
        path=f"negotiations/{row.consumer_pid}/{path}",
        message=message,
    )


def _reasons(message: dict[str, Any]) -> str | None:
    reason = message.get("reason")
    if isinstance(reason, list):
        reason = "; ".join(str(r) for r in reason)
    return str(reason)[:500] if reason else None


class NegotiationNotFound(NotFound):
    """No such negotiation, or not the caller's (DSP: 404 either way)."""

    def __init__(self, pid: str) -> None:
        super().__init__("dsp-negotiation-not-found", "no such negotiation")
        self.dsp_pids = {"providerPid": pid[:80]}  # read by gateway.http.problems


def _not_found(pid: str) -> NotFound:
    return NegotiationNotFound(pid)


def _uuid4() -> str:
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def _now() -> datetime:
    return datetime.now(UTC)
