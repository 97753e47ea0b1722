"""All SQL for DSP transfer processes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import DspTransferRow


async def get(session: AsyncSession, provider_pid: str) -> DspTransferRow | None:
    """One transfer."""
    return await session.get(DspTransferRow, provider_pid)


async def move(
    session: AsyncSession,
    provider_pid: str,
    seen: str,
    to: str,
    *,
    jti_seen: str | None,
    jti: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> bool:
    """Move from ``seen`` (holding token ``jti_seen``) to ``to`` with the current token (None:
    none); False if the transfer is no longer in ``seen`` or holds another token (a re-send
    minted one meanwhile: the token revoked must be the one it holds)."""
    held = (
        DspTransferRow.token_jti.is_(None)
        if jti_seen is None
        else DspTransferRow.token_jti == jti_seen
    )
    result = await session.execute(
        update(DspTransferRow)
        .where(DspTransferRow.provider_pid == provider_pid, DspTransferRow.state == seen, held)
        .values(state=to, token_jti=jti, token_expires_at=expires_at, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount
