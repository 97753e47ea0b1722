"""Agreements: request (checked against the policy), approve, reject, revoke, terminate.

Every refusal or ending carries a readable reason. An agreement keeps the policy version
(hash) it was made under; later changes to the dataset's policy do not touch it.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from gateway.agreements import repository
from gateway.agreements.schemas import Agreement, AgreementRequest
from gateway.datasets import repository as datasets_repo
from gateway.datasets.service import DatasetService
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.exchange.policy_input import policy_request, policy_state
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import AgreementRow
from policies import evaluate


def _to_model(row: AgreementRow) -> Agreement:
    return Agreement.model_validate(row, from_attributes=True)


class AgreementService:
    """Agreement lifecycle over the database."""

    def __init__(self, db: Database, datasets: DatasetService) -> None:
        self.db = db
        self.datasets = datasets

    async def request(
        self, consumer: AuthenticatedParticipant, body: AgreementRequest, *, now: datetime
    ) -> Agreement:
        """Ask for access; the policy decides now whether it can be granted at all."""
        dataset = await self.datasets.get(body.dataset)
        policy = await self.datasets.policy(dataset.policy_hash)
        # The most modest request the agreement could lead to (an aggregate, no columns named,
        # nothing used yet): only who, what for and when decide here; the data constraints
        # are decided on every query.
        ask = policy_request(
            consumer_id=consumer.participant.id,
            asset=dataset.asset,
            purpose=body.purpose,
            aggregate=True,
        )
        fresh = policy_state(
            consumer_id=consumer.participant.id,
            groups=consumer.participant.groups,
            use_count=0,
            request_times=(),
            agreement_start=now,
        )
        decision = evaluate(policy, ask, fresh, now=now)
        if not decision.permitted:
            state, reason = (
                "rejected",
                f"the dataset's policy does not allow this ({decision.reason})",
            )
        elif dataset.approval == "automatic":
            state, reason = "active", "approved automatically by the dataset's policy"
        else:
            state, reason = "requested", None
        row = AgreementRow(
            id=f"agr-{secrets.token_hex(8)}",
            dataset_id=dataset.id,
            consumer_id=consumer.participant.id,
            purpose=body.purpose,
            state=state,
            policy_hash=dataset.policy_hash,
            reason=reason,
            use_count=0,
            created_at=now,
            updated_at=now,
            decided_at=now if state != "requested" else None,
        )
        async with self.db.session() as session:
            session.add(row)
        return _to_model(row)

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
            allowed = {
                "active": {"requested"},
                "rejected": {"requested"},
                "revoked": {"active", "requested"},
                "terminated": {"active", "requested"},
            }
            if row.state not in allowed[to]:
                raise Conflict(
                    "agreement-state",
                    f"agreement {agreement_id} is {row.state}, it cannot become {to}",
                )
            row.state, row.reason, row.decided_at, row.updated_at = to, reason or None, now, now
            return _to_model(row)

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
        """The provider grants a requested agreement."""
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
        """The provider ends an agreement, saying why."""
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
            return [
                _to_model(r)
                for r in await repository.visible_to(session, participant.participant.id)
            ]

    async def get_for(self, agreement_id: str, participant: AuthenticatedParticipant) -> Agreement:
        """One agreement, if the caller is party to it (its consumer or the dataset's provider)."""
        me = participant.participant.id
        async with self.db.session() as session:
            row = await repository.get(session, agreement_id)
            dataset = None if row is None else await datasets_repo.get(session, row.dataset_id)
        if row is not None and me in {row.consumer_id, dataset.provider_id if dataset else None}:
            return _to_model(row)
        raise NotFound("agreement-not-found", f"no agreement {agreement_id}")

    async def active_for(self, consumer_id: str, dataset_id: str) -> Agreement | None:
        """The consumer's active agreement for the dataset, if any."""
        async with self.db.session() as session:
            row = await repository.active_for(session, consumer_id, dataset_id)
        return None if row is None else _to_model(row)
