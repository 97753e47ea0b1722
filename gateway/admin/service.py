"""One service for every change of who may do what, whatever the entry point.

The CLI, the admin API and the demo (which drives the CLI) all change participants, OAuth
clients, datasets (policy versions) and certificate revocations through
:class:`AdminChanges`. Each change runs as the *effect* of its ``admin-change`` audit entry
(:meth:`gateway.audit.log.AuditLog.append`): the change and its entry commit in one
transaction, or neither does. A change that is refused (Conflict, NotFound, ...) writes no
entry; an entry that cannot be committed undoes the change (StorageUnavailable: 503 / exit 1).

The entry says who (``actor``: the certificate's participant for the API, ``cli:<OS
user>@<host>`` for the CLI), what (``action``, ``target``) and the new values
(``decision.reasons``, one ``field=value`` each; public keys by key id only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import Change, change_entry, commit
from gateway.audit.entry import Actor, AuditEntry
from gateway.audit.log import AuditLog
from gateway.datasets.schemas import Dataset, DatasetSpec
from gateway.datasets.service import DatasetService, store_dataset
from gateway.oauth.clients import create_client, update_client
from gateway.oauth.schemas import Client, ClientCreate, ClientUpdate
from gateway.participants.schemas import Participant, ParticipantCreate, ParticipantUpdate
from gateway.participants.service import create_participant, update_participant
from policies import policy_hash

if TYPE_CHECKING:
    from gateway.services import Services

T = TypeVar("T")


def admin_changes(services: Services) -> AdminChanges:
    """The running gateway's admin changes (over its audit log and dataset service)."""
    return AdminChanges(services.audit, services.datasets)


class AdminChanges:
    """Participants, OAuth clients, datasets and revocations, each with its audit entry."""

    def __init__(self, audit: AuditLog, datasets: DatasetService) -> None:
        self.audit = audit
        self.datasets = datasets

    async def create_participant(
        self, actor: Actor, data: ParticipantCreate, *, now: datetime
    ) -> Participant:
        """Register an organisation."""
        entry = _entry(actor, "create", f"participant:{data.id}", now, _described(data))
        return await self._apply(entry, lambda s: create_participant(s, data, now=now))

    async def update_participant(
        self, actor: Actor, participant_id: str, data: ParticipantUpdate, *, now: datetime
    ) -> Participant:
        """Change a participant's name, roles, groups or status (suspend, activate)."""
        entry = _entry(actor, "update", f"participant:{participant_id}", now, _described(data))
        return await self._apply(
            entry, lambda s: update_participant(s, participant_id, data, now=now)
        )

    async def create_client(self, actor: Actor, data: ClientCreate, *, now: datetime) -> Client:
        """Register a participant as an OAuth client."""
        entry = _entry(actor, "create", f"client:{data.client_id}", now, _described(data))
        return await self._apply(entry, lambda s: create_client(s, data, now=now))

    async def update_client(
        self, actor: Actor, client_id: str, data: ClientUpdate, *, now: datetime
    ) -> Client:
        """Change a client's scopes, keys or status (disable, enable)."""
        entry = _entry(actor, "update", f"client:{client_id}", now, _described(data))
        return await self._apply(entry, lambda s: update_client(s, client_id, data, now=now))

    async def register_dataset(
        self, actor: Actor, spec: DatasetSpec, policy_text: str, fmt: str, *, now: datetime
    ) -> Dataset:
        """Add a dataset, or replace its spec and policy (a new policy version)."""
        policy = await self.datasets.prepare(spec, policy_text, fmt)  # IO before the commit
        entry = _entry(
            actor,
            "register",
            f"dataset:{spec.id}",
            now,
            (f"provider={spec.provider}", f"approval={spec.approval}"),
            dataset=spec.id,
            policy=(policy.uid, policy_hash(policy)),
        )
        return await self._apply(
            entry, lambda s: store_dataset(s, spec, policy_text, fmt, policy, now=now)
        )

    async def revoke_certificate(
        self,
        actor: Actor,
        serial_number: int,
        revoke: Callable[[], None],
        *,
        now: datetime,
        organization_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Run ``revoke`` (the CA's files) as the effect of its entry: both or neither.

        ``revoke`` runs inside the entry's transaction; if it raises, no entry is written.
        If the commit fails after it ran, the files say revoked and the log does not: the
        StorageUnavailable raised says so, and the caller must report it.
        """
        details = (f"organization_id={organization_id}", f"reason={reason or 'unspecified'}")

        async def change(_: AsyncSession) -> None:
            revoke()

        entry = _entry(actor, "revoke", f"certificate:{serial_number:x}", now, details)
        await self._apply(entry, change)

    async def _apply(self, entry: AuditEntry, change: Change[T]) -> T:
        """Commit ``change`` with ``entry``; its result."""
        return await commit(self.audit, entry, change)


_entry = change_entry  # the admin-change entry (gateway/admin/changes.py)


def _described(data: BaseModel) -> tuple[str, ...]:
    """``field=value`` for each field the change sets (keys by key id, never the key)."""
    return tuple(f"{k}={_value(k, v)}" for k, v in data.model_dump(exclude_none=True).items())


def _value(name: str, value: Any) -> str:
    if name == "jwks" and isinstance(value, Mapping):
        keys = value.get("keys", [])
        return ",".join(str(k.get("kid", "?")) for k in keys if isinstance(k, Mapping))
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
