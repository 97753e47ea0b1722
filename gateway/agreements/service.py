"""Agreements: request (checked against the policy), approve, reject, revoke, terminate.

Every refusal or ending carries a readable reason. An agreement keeps the policy version
(hash) it was made under; later changes to the dataset's policy do not touch it.

What limits count (uses, rate windows, the start for elapsedTime) is usage state
(:mod:`gateway.agreements.usage`), kept per consumer, dataset and policy version: a new
agreement continues it. A consumer has at most one live (requested or active) agreement
per dataset; asking again answers with that one. After the provider revokes, the next
agreement waits for the provider's approval even where the dataset approves automatically.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.agreements import repository, usage
from gateway.agreements.schemas import Agreement, AgreementRequest
from gateway.agreements.usage import UsageKey
from gateway.datasets import repository as datasets_repo
from gateway.datasets.schemas import Dataset
from gateway.datasets.service import DatasetService
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.exchange.policy_input import policy_request, policy_state
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import AgreementRow
from policies import Decision, evaluate

AUTOMATIC = "approved automatically by the dataset's policy"
HELD = "waits for the provider's approval: the provider revoked an earlier agreement"
# Which states each transition may start from.
ALLOWED_FROM = {
    "active": ("requested",),
    "rejected": ("requested",),
    "revoked": ("active", "requested"),
    "terminated": ("active", "requested"),
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


@dataclass(frozen=True)
class Requested:
    """The answer to a request: a new agreement (with the policy's decision) or the live one."""

    agreement: Agreement
    decision: Decision | None = None  # None when the consumer's live agreement answered
    existing: bool = False


class AgreementService:
    """Agreement lifecycle over the database."""

    def __init__(self, db: Database, datasets: DatasetService) -> None:
        self.db = db
        self.datasets = datasets

    async def request(
        self, consumer: AuthenticatedParticipant, body: AgreementRequest, *, now: datetime
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
        if not decision.permitted:
            row.state, row.decided_at = "rejected", now
            row.reason = f"the dataset's policy does not allow this ({decision.reason})"
        try:
            async with self.db.session() as session:
                await repository.add(session, row)  # the partial unique index: one live
                if row.state == "requested" and dataset.approval == "automatic":
                    await self._approve_automatically(session, row, now)
                return Requested(await _with_count(session, row), decision)
        except IntegrityError:  # a concurrent request made the live agreement first
            live = await self._live(consumer.participant.id, dataset.id)
            if live is None:
                raise Conflict("agreement-state", "agreements changed meanwhile; retry") from None
            return Requested(live, existing=True)

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
        async with self.db.session() as session:
            used = await usage.read(session, key, now - usage.RATE_WINDOW)
        state = policy_state(
            consumer_id=consumer.participant.id,
            groups=consumer.participant.groups,
            use_count=used.use_count if used else 0,
            request_times=used.request_times if used else (),
            agreement_start=used.started_at if used else now,
        )
        return evaluate(policy, ask, state, now=now)

    @staticmethod
    async def _approve_automatically(
        session: AsyncSession, row: AgreementRow, now: datetime
    ) -> None:
        # Checked after the insert: a revocation that committed before it is seen here.
        if await repository.held(session, row.consumer_id, row.dataset_id):
            row.reason = HELD
            return
        row.state, row.reason, row.decided_at = "active", AUTOMATIC, now
        await usage.start(session, key_of(row), now)

    async def _live(self, consumer_id: str, dataset_id: str) -> Agreement | None:
        async with self.db.session() as session:
            row = await repository.live_for(session, consumer_id, dataset_id)
            return None if row is None else await _with_count(session, row)

    async def _transition(
        self,
        agreement_id: str,
        actor: AuthenticatedParticipant,
        to: str,
        reason: str,
        *,
        now: datetime,
    ) -> Agreement:
        async with self.db.session() as session:
            row = await repository.get(session, agreement_id)
            if row is None:
                raise NotFound("agreement-not-found", f"no agreement {agreement_id}")
            await self._check_actor(row, actor, to)
            moved = await repository.move(
                session, agreement_id, ALLOWED_FROM[to], to, reason=reason or None, now=now
            )
            await session.refresh(row)
            if not moved:  # it was already elsewhere, or a concurrent transition won
                raise Conflict(
                    "agreement-state",
                    f"agreement {agreement_id} is {row.state}, it cannot become {to}",
                )
            await self._after(session, row, now)
            return await _with_count(session, row)

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
        self, agreement_id: str, provider: AuthenticatedParticipant, *, now: datetime
    ) -> Agreement:
        """The provider grants a requested agreement (and lifts a revocation's hold)."""
        return await self._transition(
            agreement_id, provider, "active", "approved by the provider", now=now
        )

    async def reject(
        self, agreement_id: str, provider: AuthenticatedParticipant, reason: str, *, now: datetime
    ) -> Agreement:
        """The provider refuses a request, saying why."""
        return await self._transition(
            agreement_id, provider, "rejected", reason or "rejected by the provider", now=now
        )

    async def revoke(
        self, agreement_id: str, provider: AuthenticatedParticipant, reason: str, *, now: datetime
    ) -> Agreement:
        """The provider ends an agreement, saying why; the next one needs its approval."""
        return await self._transition(
            agreement_id, provider, "revoked", reason or "revoked by the provider", now=now
        )

    async def terminate(
        self, agreement_id: str, consumer: AuthenticatedParticipant, reason: str, *, now: datetime
    ) -> Agreement:
        """The consumer ends its own agreement."""
        return await self._transition(
            agreement_id, consumer, "terminated", reason or "terminated by the consumer", now=now
        )

    async def visible_to(self, participant: AuthenticatedParticipant) -> list[Agreement]:
        """Agreements the caller is party to."""
        async with self.db.session() as session:
            rows = await repository.visible_to(session, participant.participant.id)
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

    async def active_for(self, consumer_id: str, dataset_id: str) -> Agreement | None:
        """The consumer's active agreement for the dataset, if any."""
        async with self.db.session() as session:
            found = await repository.active_for(session, consumer_id, dataset_id)
        return None if found is None else _to_model(*found)
