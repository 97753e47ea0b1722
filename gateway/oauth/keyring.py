"""Token-signing keys: the current one, the published ones (JWKS) and rotation.

The signing key comes from the settings (``signing_key_file``). At start the gateway records
its public key in ``token_keys``; any other key still marked current is retired there. A
retired key stays published (and trusted for verification) until every token it signed has
expired: ``retired_at`` + the token lifetime + the 60 s leeway. Replicas share the table, so
a token signed by any replica verifies on all of them; an unknown ``kid`` makes a replica
reload the table (at most once every few seconds).

Rotation: put a new key file in place and restart the replicas. A replica still running
with the old key keeps signing with it; finish a rollout within the token lifetime.

Recording a new key (and retiring the others) commits with its ``admin-change`` entry
(action ``rotate``, target ``token-key:<kid>``, the retired key ids in its reasons): both or
neither, so a gateway whose audit store refuses the entry does not start. A restart with
the key already recorded changes nothing and writes no entry.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import change_entry, commit
from gateway.audit.entry import Actor, AuditEntry
from gateway.audit.log import AuditLog
from gateway.auth.jose import Key, import_private, import_public, public_jwk, signing_alg
from gateway.auth.windows import key_published_until
from gateway.oauth import repository
from gateway.settings import SigningKey
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import TokenKeyRow

RELOAD_INTERVAL = timedelta(seconds=5)
ATTEMPTS = 3  # replicas starting together: re-read the table when another one moved first


class _Moved(Exception):  # an answer carried out of an effect: the table changed meanwhile
    """The token keys are not what the entry was written for."""


def _plan(rows: Sequence[TokenKeyRow], kid: str) -> tuple[bool, tuple[str, ...]]:
    """Whether ``kid`` is new, and which other keys are still current (to retire)."""
    new = not any(row.kid == kid for row in rows)
    return new, tuple(sorted(r.kid for r in rows if r.kid != kid and r.retired_at is None))


class KeyRing:
    """The gateway's own token keys."""

    def __init__(
        self, db: Database, signing_key: SigningKey, lifetime: timedelta, audit: AuditLog
    ) -> None:
        self.db = db
        self.audit = audit
        self.alg = signing_alg(signing_key)
        self.key: Key = import_private(signing_key)
        self.kid = str(self.key.kid)
        self.lifetime = lifetime
        self._published: list[dict[str, object]] = []
        self._keys = KeySet([])
        self._loaded_at: datetime | None = None
        self._next_expiry: datetime | None = None

    async def start(self, now: datetime) -> None:
        """Record the current key and retire the others (with the entry that says so)."""
        for _ in range(ATTEMPTS):
            async with self.db.session() as session:
                plan = _plan(await repository.token_keys(session), self.kid)
            if plan == (False, ()):
                break  # recorded already: nothing changes
            try:
                await commit(self.audit, self._entry(plan[1], now), self._record(plan, now))
            except (_Moved, IntegrityError):  # another replica changed the table first
                continue
            break
        else:  # fail closed: a key that is not recorded would not verify on other replicas
            raise StorageUnavailable("token keys kept changing: the signing key is not recorded")
        await self.reload(now)

    def _entry(self, retired: tuple[str, ...], now: datetime) -> AuditEntry:
        actor = Actor(source=f"gateway:{socket.gethostname()}"[:512])
        details = (f"alg={self.alg}", f"retired={','.join(retired)}")
        return change_entry(actor, "rotate", f"token-key:{self.kid}", now, details)

    def _record(
        self, plan: tuple[bool, tuple[str, ...]], now: datetime
    ) -> Callable[[AsyncSession], Awaitable[None]]:
        async def change(session: AsyncSession) -> None:
            rows = await repository.token_keys(session)
            if _plan(rows, self.kid) != plan:
                raise _Moved
            if plan[0]:
                jwk = public_jwk(self.key, self.alg)
                session.add(
                    TokenKeyRow(kid=self.kid, alg=self.alg, public_jwk=jwk, activated_at=now)
                )
            for row in rows:
                if row.kid in plan[1]:
                    row.retired_at = now
            await session.flush()

        return change

    async def reload(self, now: datetime) -> None:
        """Re-read the published keys from the database."""
        async with self.db.session() as session:
            rows = await repository.token_keys(session)
        ends = {row.kid: self._published_until(row.retired_at) for row in rows}
        live = [row.public_jwk for row in rows if _after(ends[row.kid], now)]
        self._published = live
        self._keys = KeySet([import_public(jwk) for jwk in live])
        self._loaded_at = now
        retiring = [end for end in ends.values() if end is not None and end > now]
        self._next_expiry = min(retiring, default=None)

    def _published_until(self, retired_at: datetime | None) -> datetime | None:
        return None if retired_at is None else key_published_until(retired_at, self.lifetime)

    def jwks(self) -> dict[str, object]:
        """The JWKS document: every key whose tokens may still be alive."""
        return {"keys": list(self._published)}

    async def verification_keys(self, kid: str | None, now: datetime) -> KeySet:
        """The published keys, reloaded first when ``kid`` is unknown (rate-limited).

        A retired key is dropped the moment its window ends, not at the next reload.
        """
        if self._next_expiry is not None and now >= self._next_expiry:
            await self.reload(now)
        known = any(key.kid == kid for key in self._keys.keys)
        stale = self._loaded_at is None or now - self._loaded_at > RELOAD_INTERVAL
        if not known and stale:
            await self.reload(now)
        return self._keys


def _after(end: datetime | None, now: datetime) -> bool:
    """Whether a key published until ``end`` (None: still current) is live at ``now``."""
    return end is None or end > now
