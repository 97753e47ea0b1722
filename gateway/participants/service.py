"""Participant registry logic: create, change, list, and resolve a verified certificate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from certs import CertificateIdentity
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.participants import repository
from gateway.participants.schemas import Participant, ParticipantCreate, ParticipantUpdate
from gateway.registry import registry_of
from gateway.storage.db import Database
from gateway.storage.models import ParticipantRow


@dataclass(frozen=True, slots=True)
class AuthenticatedParticipant:
    """A verified certificate bound to an active, registered participant.

    ``effective_roles`` are the roles both the registry grants and the certificate names:
    a certificate issued for ``consumer`` cannot act as ``officer``, and a role the registry
    withdrew is gone even while old certificates remain valid.
    """

    participant: Participant
    effective_roles: frozenset[str]
    certificate: CertificateIdentity
    source: Literal["tls", "proxy"]


def _to_model(row: ParticipantRow) -> Participant:
    return Participant.model_validate(row, from_attributes=True)


class ParticipantService:
    """Registry operations over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, data: ParticipantCreate, *, now: datetime) -> Participant:
        """Register an organisation, UNAUDITED: for seeding and tests only.

        Every entry point (CLI, admin API, demo) goes through
        :class:`gateway.admin.service.AdminChanges`, which commits the change with its entry.
        """
        async with self.db.session() as session:
            return await create_participant(session, data, now=now)

    async def update(
        self, participant_id: str, data: ParticipantUpdate, *, now: datetime
    ) -> Participant:
        """Change name, roles, groups or status, UNAUDITED (see :meth:`create`)."""
        async with self.db.session() as session:
            return await update_participant(session, participant_id, data, now=now)

    async def get(self, participant_id: str) -> Participant:
        """One participant; :class:`NotFound` otherwise."""
        async with self.db.session() as session:
            row = await repository.get(session, participant_id)
            if row is None:
                raise NotFound("participant-not-found", f"no participant {participant_id}")
            return _to_model(row)

    async def list(self) -> list[Participant]:
        """Every participant."""
        async with self.db.session() as session:
            return [_to_model(row) for row in await repository.list_all(session)]

    async def authenticate(
        self, identity: CertificateIdentity, source: Literal["tls", "proxy"]
    ) -> AuthenticatedParticipant:
        """Bind a verified certificate to its registered, active participant (from the
        in-memory registry: current within its bound, else StorageUnavailable)."""
        registry = registry_of(self.db)  # in memory; see gateway/registry.py
        participant = (await registry.current()).participants.get(identity.organization_id)
        if participant is None or participant.status != "active":  # a refusal asks first
            participant = (await registry.refresh()).participants.get(identity.organization_id)
        if participant is None:
            raise Forbidden(
                "unknown-participant",
                f"organisation {identity.organization_id} is not a registered participant",
            )
        if participant.status != "active":
            raise Forbidden(
                "participant-suspended", f"participant {participant.id} is {participant.status}"
            )
        roles = frozenset(participant.roles) & identity.roles
        return AuthenticatedParticipant(participant, roles, identity, source)


async def create_participant(
    session: AsyncSession, data: ParticipantCreate, *, now: datetime
) -> Participant:
    """Register an organisation in ``session``'s transaction; :class:`Conflict` if it exists."""
    if await repository.get(session, data.id) is not None:
        raise Conflict("participant-exists", f"participant {data.id} already exists")
    row = ParticipantRow(
        id=data.id,
        name=data.name,
        roles=sorted(set(data.roles)),
        status=data.status,
        groups=sorted(set(data.groups)),
        created_at=now,
        updated_at=now,
    )
    try:
        await repository.add(session, row)
    except IntegrityError as exc:  # registered concurrently, since the check above
        raise Conflict("participant-exists", f"participant {data.id} already exists") from exc
    return _to_model(row)


async def update_participant(
    session: AsyncSession, participant_id: str, data: ParticipantUpdate, *, now: datetime
) -> Participant:
    """Change name, roles, groups or status in ``session``'s transaction."""
    row = await repository.get(session, participant_id)
    if row is None:
        raise NotFound("participant-not-found", f"no participant {participant_id}")
    if data.name is not None:
        row.name = data.name
    if data.roles is not None:
        row.roles = sorted(set(data.roles))
    if data.status is not None:
        row.status = data.status
    if data.groups is not None:
        row.groups = sorted(set(data.groups))
    row.updated_at = now
    await session.flush()
    return _to_model(row)
