"""SQL both stores speak, written once per dialect."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import Base


async def insert_unless_present(
    session: AsyncSession, model: type[Base], values: dict[str, Any]
) -> None:
    """INSERT ``values``, or nothing when a row with the same key exists (no error, no wait
    beyond the key's lock): ``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""
    await session.execute(_insert(session, model).values(values).on_conflict_do_nothing())


async def insert_or_add(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], column: str
) -> None:
    """INSERT ``rows``; where a row with the same key exists, add the row's ``column`` to
    it instead (``ON CONFLICT (key) DO UPDATE SET column = column + excluded.column``)."""
    stmt = _adding(session.get_bind().dialect.name, model, column)
    await (await session.connection()).execute(stmt, rows)  # one execution per row, in order


@lru_cache(maxsize=16)  # per dialect, table and column: built once (rate buckets, per request)
def _adding(dialect: str, model: type[Base], column: str) -> Any:
    """:func:`insert_or_add`'s statement on the table (Core), its values the execution's."""
    table: Any = model.__table__
    stmt = _insert_on(dialect, table)
    added = {column: table.c[column] + stmt.excluded[column]}
    return stmt.on_conflict_do_update(index_elements=_keys(model), set_=added)


async def insert_or_replace(
    session: AsyncSession, model: type[Base], values: dict[str, Any]
) -> None:
    """INSERT ``values``; where a row with the same key exists, set its other columns to
    ``values`` instead (``ON CONFLICT (key) DO UPDATE SET ...``)."""
    keys = _keys(model)
    stmt = _insert(session, model).values(values)
    replaced = {name: stmt.excluded[name] for name in values if name not in keys}
    await session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=replaced))


def _keys(model: type[Base]) -> list[str]:
    table: Any = model.__table__
    return [c.name for c in table.primary_key.columns]


def _insert(session: AsyncSession, model: type[Base]) -> Any:
    """The dialect's INSERT (the one with ``ON CONFLICT``) for ``model``."""
    return _insert_on(session.get_bind().dialect.name, model)


def _insert_on(dialect: str, target: Any) -> Any:
    """``dialect``'s INSERT (the one with ``ON CONFLICT``) into ``target`` (model or table)."""
    if dialect == "postgresql":
        return postgresql.insert(target)
    if dialect == "sqlite":
        return sqlite.insert(target)
    raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")  # pragma: no cover
