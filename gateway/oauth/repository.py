"""All SQL for OAuth: clients, token keys, revoked tokens, spent assertions, bound certs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.windows import assertion_purge_before, token_purge_before
from gateway.storage.models import (
    BoundCertificateRow,
    OAuthClientRow,
    RevokedTokenRow,
    TokenKeyRow,
    UsedAssertionRow,
)


async def get_client(session: AsyncSession, client_id: str) -> OAuthClientRow | None:
    """One client by id."""
    return await session.get(OAuthClientRow, client_id)


async def list_clients(session: AsyncSession) -> Sequence[OAuthClientRow]:
    """Every client, by id."""
    return (await session.scalars(select(OAuthClientRow).order_by(OAuthClientRow.client_id))).all()


async def token_keys(session: AsyncSession) -> Sequence[TokenKeyRow]:
    """Every token key ever used, newest first."""
    query = select(TokenKeyRow).order_by(TokenKeyRow.activated_at.desc())
    return (await session.scalars(query)).all()


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    """Whether the token with this jti was revoked."""
    return await session.get(RevokedTokenRow, jti) is not None


async def spend_assertion(session: AsyncSession, row: UsedAssertionRow, now: datetime) -> None:
    """Record a client assertion's jti (flush: a replay raises IntegrityError); purge old ones.

    A row goes only once its assertion can no longer be accepted (gateway/auth/windows.py).
    """
    horizon = assertion_purge_before(now)
    await session.execute(delete(UsedAssertionRow).where(UsedAssertionRow.expires_at < horizon))
    session.add(row)
    await session.flush()


async def purge_revoked(session: AsyncSession, now: datetime) -> None:
    """Forget revocations of tokens no longer accepted anyway (gateway/auth/windows.py)."""
    horizon = token_purge_before(now)
    await session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < horizon))


async def revoke(session: AsyncSession, jti: str, expires_at: datetime, now: datetime) -> bool:
    """Record the revocation of token ``jti``; False if it was revoked already.

    A concurrent revocation of the same token raises IntegrityError at the flush.
    """
    if await is_revoked(session, jti):
        return False
    session.add(RevokedTokenRow(jti=jti, expires_at=expires_at, revoked_at=now))
    await session.flush()
    return True


async def remember_certificate(
    session: AsyncSession, thumbprint: str, chain_pem: str, expires_at: datetime, now: datetime
) -> None:
    """Keep a bound certificate until ``expires_at`` at least; purge those no token needs.

    Concurrent first inserts of the same certificate raise IntegrityError at the flush.
    """
    horizon = token_purge_before(now)
    await session.execute(
        delete(BoundCertificateRow).where(BoundCertificateRow.expires_at < horizon)
    )
    row = await session.get(BoundCertificateRow, thumbprint)
    if row is None:
        session.add(
            BoundCertificateRow(thumbprint=thumbprint, chain_pem=chain_pem, expires_at=expires_at)
        )
    elif row.expires_at < expires_at:
        row.expires_at = expires_at
    await session.flush()


async def bound_chain(session: AsyncSession, thumbprint: str) -> str | None:
    """The PEM chain of a certificate some token was bound to, or None."""
    row = await session.get(BoundCertificateRow, thumbprint)
    return None if row is None else row.chain_pem
