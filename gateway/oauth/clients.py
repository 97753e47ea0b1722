"""OAuth client registry: which participants may get tokens, how they authenticate, scopes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import Conflict, NotFound
from gateway.oauth import repository
from gateway.oauth.schemas import Client, ClientCreate, ClientUpdate
from gateway.participants import repository as participants
from gateway.storage.db import Database
from gateway.storage.models import OAuthClientRow


def _to_model(row: OAuthClientRow) -> Client:
    return Client.model_validate(row, from_attributes=True)


class ClientService:
    """CRUD over ``oauth_clients``; a client id is always a registered participant id."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, data: ClientCreate, *, now: datetime) -> Client:
        """Register a client, UNAUDITED: for seeding and tests only.

        Every entry point (CLI, admin API, demo) goes through
        :class:`gateway.admin.service.AdminChanges`, which commits the change with its entry.
        """
        async with self.db.session() as session:
            return await create_client(session, data, now=now)

    async def update(self, client_id: str, data: ClientUpdate, *, now: datetime) -> Client:
        """Change scopes, keys or status, UNAUDITED (see :meth:`create`)."""
        async with self.db.session() as session:
            return await update_client(session, client_id, data, now=now)

    async def find(self, client_id: str) -> Client | None:
        """The client, or None."""
        async with self.db.session() as session:
            row = await repository.get_client(session, client_id)
            return None if row is None else _to_model(row)

    async def get(self, client_id: str) -> Client:
        """The client; NotFound otherwise."""
        client = await self.find(client_id)
        if client is None:
            raise NotFound("client-not-found", f"no client {client_id}")
        return client

    async def list(self) -> list[Client]:
        """Every client."""
        async with self.db.session() as session:
            return [_to_model(row) for row in await repository.list_clients(session)]


async def create_client(session: AsyncSession, data: ClientCreate, *, now: datetime) -> Client:
    """Register a client in ``session``'s transaction; the participant must exist."""
    if await participants.get(session, data.client_id) is None:
        raise NotFound(
            "participant-not-found", f"no participant {data.client_id}: register it first"
        )
    if await repository.get_client(session, data.client_id) is not None:
        raise Conflict("client-exists", f"client {data.client_id} already exists")
    row = OAuthClientRow(
        client_id=data.client_id,
        auth_method=data.auth_method,
        profile=data.profile,
        scopes=data.scopes,
        jwks=data.jwks,
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # registered concurrently, since the check above
        raise Conflict("client-exists", f"client {data.client_id} already exists") from exc
    return _to_model(row)


async def update_client(
    session: AsyncSession, client_id: str, data: ClientUpdate, *, now: datetime
) -> Client:
    """Change scopes, keys or status in ``session``'s transaction."""
    row = await repository.get_client(session, client_id)
    if row is None:
        raise NotFound("client-not-found", f"no client {client_id}")
    if data.jwks is not None and row.auth_method != "private_key_jwt":
        raise Conflict("client-takes-no-keys", "only private_key_jwt clients have keys")
    if data.scopes is not None:
        row.scopes = data.scopes
    if data.jwks is not None:
        row.jwks = data.jwks
    if data.status is not None:
        row.status = data.status
    row.updated_at = now
    await session.flush()
    return _to_model(row)
