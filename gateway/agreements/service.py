"""Agreements: request (checked against the policy), approve, reject, revoke, terminate.

Every refusal or ending carries a readable reason. An agreement keeps the policy version
(hash) it was made under; later changes to the dataset's policy do not touch it.

What limits count (uses, rate windows, the start for elapsedTime) is usage state
(:mod:`gateway.agreements.usage`), kept per consumer, dataset and policy version: a new
agreement continues it. A consumer has at most one live (requested or active) agreement
per dataset; asking again answers with that one. After the provider revokes, the next
agreement waits for the provider's approval even where the dataset approves automatically.

Every transition (a request, the automatic approval that comes with it, approve, reject,
revoke, terminate) commits as the effect of its ``agreement-changed`` entry
(:func:`gateway.admin.changes.commit`): the change and its entry, or neither. A refused
transition (Conflict, NotFound, Forbidden) writes no entry; neither does a repeated request
answered with the live agreement, since it changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import Change, commit
from gateway.agreements import repository, usage
from gateway.agreements.entries import agreement_entry
from gateway.agreements.schemas import Agreement, AgreementRequest
from gateway.agreements.usage import UsageKey
from gateway.audit.entry import Actor
from gateway.audit.log import AuditLog
from gateway.datasets import repository as datasets_repo
from gateway.datasets.schemas import Dataset
from gateway.datasets.service import DatasetService
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.exchange.policy_input import policy_request, policy_state
from gateway.participants.service import AuthenticatedParticipant
from gateway.registry import registry_of
from gateway.storage.db import Database
from gateway.storage.models import AgreementRow
from policies import Decision, evaluate
from policies.bounds import rate_limits

AUTOMATIC = "approved automatically by the dataset's policy"
HELD = "waits for the provider's approval: the provider revoked an earlier agreement"
# Which states each transition may start from.
ALLOWED_FROM = {
    "active": ("requested",),
    "rejected": ("requested",),
    "revoked": ("active", "requested"),
    "terminated": ("active", "requested"),
}
ACTIONS = {
    "active": "approve",
    "rejected": "reject",
    "revoked": "revoke",
    "terminated": "terminate",
}


def key_of(row: AgreementRow | Agreement) -> UsageKey:
    """The usage state an agreement spends from."""
    return UsageKey(row.consumer_id, row.dataset_id, row.policy_hash)


def _to_model(row: AgreementRow, used: int) -> Agreement:
    return Agreement.model_validate(
        {**{c: getattr(row, c) for c in Agreement.model_fields}, "use_count": used}
    )


async def _with_count(session: AsyncSession, row: AgreementRow) -> Agreement:
    found = await usage.counts(session, {key_of(row)})
    return _to_model(row, found[key_of(row)])


def actor_of(participant: AuthenticatedParticipant) -> Actor:
    """The entry's actor for a participant acting without an HTTP request (no address)."""
    return Actor(
        participant=participant.participant.id,
        certificate=participant.certificate.thumbprint_sha256,
    )


class _Existing(Exception):  # an answer carried out of an effect, not an error
    """The consumer's live agreement, found inside the request's transaction."""

    def __init__(self, agreement: Agreement) -> None:
        super().__init__(agreement.id)
        self.agreement = agreement


def _decide(
    row: AgreementRow, decision: Decision, *, automatic: bool, held: bool, now: datetime
) -> None:
    """Where a new request starts: rejected by the policy, approved automatically, or
    requested (waiting for the provider; also when a revocation holds it)."""
    if not decision.permitted:
        row.state, row.decided_at = "rejected", now
        row.reason = f"the dataset's policy does not allow this ({decision.reason})"
    elif automatic and held:
        row.reason = HELD
    elif automatic:
        row.state, row.reason, row.decided_at = "active", AUTOMATIC, now


def _insert(row: AgreementRow, *, automatic: bool, held: bool) -> Change[Agreement]:
    """The effect of a request's entry: insert ``row`` (and begin its usage if active)."""

    async def change(session: AsyncSession) -> Agreement:
        found = await repository.live_for(session, row.consumer_id, row.dataset_id)
        if found is not None:  # made meanwhile (on this or another replica)
            raise _Existing(await _with_count(session, found))
        # Checked again in the transaction: a revocation committed since is seen here.
        if automatic and await repository.held(session, row.consumer_id, row.dataset_id) != held:
            raise Conflict("agreement-state", "agreements changed meanwhile; retry")
        await repository.add(session, row)  # the partial unique index: one live
        if row.state == "active":
            await usage.start(session, key_of(row), row.decided_at or row.created_at)
        return await _with_count(session, row)

    return change


@dataclass(frozen=True)
class Requested:
    """The answer to a request: a new agreement (with the policy's decision) or the live one."""

    agreement: Agreement
    decision: Decision | None = None  # None when the consumer's live agreement answered
    existing: bool = False


class AgreementService:
    """Agreement lifecycle over the database."""

    def __init__(self, db: Database, datasets: DatasetService, audit: AuditLog) -> None:
        self.db = db
        self.datasets = datasets
        self.audit = audit

    async def request(
        self,
        consumer: AuthenticatedParticipant,
        body: AgreementRequest,
        *,
        now: datetime,
        actor: Actor | None = None,
    ) -> Requested:
        """Ask for access; the policy decides now, against the usage so far, whether it can be
        granted at all. A live agreement for the dataset answers instead of a new one."""
        dataset = await self.datasets.get(body.dataset)
        live = await self._live(consumer.participant.id, dataset.id)
        if live is not None:
            return Requested(live, existing=True)
        decision = await self._check(consumer, dataset, body.purpose, now)
        row = AgreementRow(
            id=f"agr-{secrets.token_hex(8)}", dataset_id=dataset.id,
            consumer_id=consumer.participant.id, purpose=body.purpose,
            state="requested", policy_hash=dataset.policy_hash, reason=None, use_count=0,
            created_at=now, updated_at=now, decided_at=None,
        )  # fmt: skip
        automatic = decision.permitted and dataset.approval == "automatic"
        held = automatic and await self._held(row)
        _decide(row, decision, automatic=automatic, held=held, now=now)
        entry = agreement_entry(
            actor or actor_of(consumer), row, "request",
            state=row.state, reason=row.reason, now=now, decision=decision,
        )  # fmt: skip

        try:
            made = await commit(self.audit, entry, _insert(row, automatic=automatic, held=held))
            return Requested(made, decision)
        except _Existing as existing:
            return Requested(existing.agreement, existing=True)
        except IntegrityError:  # a concurrent request made the live agreement first
            live = await self._live(consumer.participant.id, dataset.id)
            if live is None:
                raise Conflict("agreement-state", "agreements changed meanwhile; retry") from None
            return Requested(live, existing=True)

    async def _held(self, row: AgreementRow) -> bool:
        async with self.db.session() as session:
            return await repository.held(session, row.consumer_id, row.dataset_id)

    async def _check(
        self, consumer: AuthenticatedParticipant, dataset: Dataset, purpose: str, now: datetime
    ) -> Decision:
        """The policy's decision on the most modest use the agreement could lead to."""
        policy = await self.datasets.compiled(dataset.policy_hash)
        # An aggregate, no columns named: only who, what for, when and how much was used
        # already decide here; the data constraints are decided on every query.
        ask = policy_request(
            consumer_id=consumer.participant.id, asset=dataset.asset, purpose=purpose,
            aggregate=True,
        )  # fmt: skip
        key = UsageKey(consumer.participant.id, dataset.id, dataset.policy_hash)
        rates = rate_limits(policy.policy)
        windows = tuple(w for _, w in rates)
        async with self.db.session() as session:
            used = await usage.current(session, key, windows, now)
        times: tuple[datetime, ...] = ()
        if used is not None and rates:
            cap = max(limit for limit, _ in rates) + 1
            times = usage.request_times(windows, used[2], now, cap=cap)
        state = policy_state(
            consumer_id=consumer.participant.id,
            groups=consumer.participant.groups,
            use_count=used[0] if used else 0,
            request_times=times,
            agreement_start=used[1] if used else now,
        )
        return evaluate(policy, ask, state, now=now)

    async def _live(self, consumer_id: str, dataset_id: str) -> Agreement | None:
        async with self.db.session() as session:
            row = await repository.live_for(session, consumer_id, dataset_id)
            return None if row is None else await _with_count(session, row)

    async def _transition(
        self,
        agreement_id: str,
        participant: AuthenticatedParticipant,
        to: str,
        reason: str,
        *,
        now: datetime,
        actor: Actor | None,
    ) -> Agreement:
        async with self.db.session() as session:
            row = await repository.get(session, agreement_id)
        if row is None:
            raise NotFound("agreement-not-found", f"no agreement {agreement_id}")
        await self._check_actor(row, participant, to)
        seen = row.state  # the state the actor decided on: it must still hold at the commit
        if seen not in ALLOWED_FROM[to]:
            raise Conflict(
                "agreement-state", f"agreement {agreement_id} is {seen}, it cannot become {to}"
            )
        entry = agreement_entry(
            actor or actor_of(participant), row, ACTIONS[to],
            state=to, reason=reason or None, now=now,
        )  # fmt: skip

        async def change(session: AsyncSession) -> Agreement:
            moved = await repository.move(
                session, agreement_id, (seen,), to, reason=reason or None, now=now
            )
            current = await repository.get(session, agreement_id)
            assert current is not None  # noqa: S101 - agreements are never deleted
            await session.refresh(current)
            if not moved:  # a concurrent transition won
                raise Conflict(
                    "agreement-state",
                    f"agreement {agreement_id} is {current.state}, it cannot become {to}",
                )
            await self._after(session, current, now)
            return await _with_count(session, current)

        return await commit(self.audit, entry, change)

    @staticmethod
    async def _after(session: AsyncSession, row: AgreementRow, now: datetime) -> None:
        """What a transition leaves behind: the usage state, the provider's hold."""
        if row.state == "active":  # the provider approved: counting begins (or continues)
            await repository.release(session, row.consumer_id, row.dataset_id)
            await usage.start(session, key_of(row), now)
        elif row.state == "revoked":
            await repository.hold(session, row, now)

    async def _check_actor(
        self, row: AgreementRow, actor: AuthenticatedParticipant, to: str
    ) -> None:
        if to == "terminated":
            if row.consumer_id != actor.participant.id:
                raise Forbidden(
                    "not-your-agreement", "only the consumer can terminate an agreement"
                )
            return
        dataset = await self.datasets.get(row.dataset_id)
        if dataset.provider_id != actor.participant.id or "provider" not in actor.effective_roles:
            raise Forbidden(
                "not-your-dataset", "only the dataset's provider decides this agreement"
            )

    async def approve(
        self,
        agreement_id: str,
        provider: AuthenticatedParticipant,
        *,
        now: datetime,
        actor: Actor | None = None,
    ) -> Agreement:
        """The provider grants a requested agreement (and lifts a revocation's hold)."""
        return await self._transition(
            agreement_id, provider, "active", "approved by the provider", now=now, actor=actor
        )

    async def reject(
        self,
        agreement_id: str,
        provider: AuthenticatedParticipant,
        reason: str,
        *,
        now: datetime,
        actor: Actor | None = None,
    ) -> Agreement:
        """The provider refuses a request, saying why."""
        reason = reason or "rejected by the provider"
        return await self._transition(
            agreement_id, provider, "rejected", reason, now=now, actor=actor
        )

    async def revoke(
        self,
        agreement_id: str,
        provider: AuthenticatedParticipant,
        reason: str,
        *,
        now: datetime,
        actor: Actor | None = None,
    ) -> Agreement:
        """The provider ends an agreement, saying why; the next one needs its approval."""
        reason = reason or "revoked by the provider"
        return await self._transition(
            agreement_id, provider, "revoked", reason, now=now, actor=actor
        )

    async def terminate(
        self,
        agreement_id: str,
        consumer: AuthenticatedParticipant,
        reason: str,
        *,
        now: datetime,
        actor: Actor | None = None,
    ) -> Agreement:
        """The consumer ends its own agreement."""
        reason = reason or "terminated by the consumer"
        return await self._transition(
            agreement_id, consumer, "terminated", reason, now=now, actor=actor
        )

    async def visible_to(self, participant: AuthenticatedParticipant) -> list[Agreement]:
        """Agreements the caller is party to."""
        async with self.db.session() as session:
            rows = await repository.visible_to(session, participant.participant.id)
            found = await usage.counts(session, {key_of(r) for r in rows})
        return [_to_model(r, found[key_of(r)]) for r in rows]

    async def newest(self, limit: int) -> list[Agreement]:
        """Every consumer's agreements, the most recently changed first: for officers."""
        async with self.db.session() as session:
            rows = await repository.newest(session, limit)
            found = await usage.counts(session, {key_of(r) for r in rows})
        return [_to_model(r, found[key_of(r)]) for r in rows]

    async def get_for(self, agreement_id: str, participant: AuthenticatedParticipant) -> Agreement:
        """One agreement, if the caller is party to it (its consumer or the dataset's provider)."""
        me = participant.participant.id
        async with self.db.session() as session:
            row = await repository.get(session, agreement_id)
            dataset = None if row is None else await datasets_repo.get(session, row.dataset_id)
            if row is not None and me in {
                row.consumer_id,
                dataset.provider_id if dataset else None,
            }:
                return await _with_count(session, row)
        raise NotFound("agreement-not-found", f"no agreement {agreement_id}")

    async def active(self, consumer_id: str, dataset_id: str) -> Agreement | None:
        """The consumer's active agreement for the dataset, from the in-memory registry
        (gateway/registry.py): its ``use_count`` is 0, the uses are in the usage state."""
        registry, key = registry_of(self.db), (consumer_id, dataset_id)
        found = (await registry.current()).agreements.get(key)
        if found is None:  # a refusal asks the database first: approved a moment ago?
            found = (await registry.refresh()).agreements.get(key)
        return found

    async def active_for(self, consumer_id: str, dataset_id: str) -> Agreement | None:
        """The consumer's active agreement for the dataset, if any, read from the database."""
        async with self.db.session() as session:
            found = await repository.active_for(session, consumer_id, dataset_id)
        return None if found is None else _to_model(*found)
