"""SQL both stores speak, written once per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import Base


async def insert_unless_present(
    session: AsyncSession, model: type[Base], values: dict[str, Any]
) -> None:
    """INSERT ``values``, or nothing when a row with the same key exists (no error, no wait
    beyond the key's lock): ``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(postgresql.insert(model).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        await session.execute(sqlite.insert(model).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - only the two supported stores reach here
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")


async def insert_or_add(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], column: str
) -> None:
    """INSERT ``rows``; where a row with the same key exists, add the row's ``column`` to
    it instead (``ON CONFLICT (key) DO UPDATE SET column = column + excluded.column``)."""
    dialect = session.get_bind().dialect.name
    table: Any = model.__table__
    keys = [c.name for c in table.primary_key.columns]
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(model).values(rows)
    elif dialect == "sqlite":
        stmt = sqlite.insert(model).values(rows)
    else:  # pragma: no cover - only the two supported stores reach here
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")
    added = {column: table.c[column] + stmt.excluded[column]}
    await session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=added))
