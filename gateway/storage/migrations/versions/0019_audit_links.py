"""audit entries: target, trace id and request id as columns; indexes to sort and link

Revision ID: 0019
Revises: 0018 (written on 0011)
Create Date: 2026-12-03

The officer console filters by agreement (``target`` = ``agreement:<id>``), by any target,
by trace id and by request id (a decision and its completion share it), and sorts by time,
event, participant, dataset and decision, paging on ``(column, idx)``: one index each,
walked in order and stopped after a page. ``(time, idx)`` replaces the index on ``time``.
Existing entries get the three columns from their canonical bytes, in batches.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"  # written on 0011; re-chained after main's 0020, 0017, 0018
branch_labels = None
depends_on = None

COLUMNS = ("target", "trace_id", "request_id")
BATCH = 5000

_entries = sa.table(
    "audit_entries",
    sa.column("idx", sa.BigInteger()),
    sa.column("entry", sa.LargeBinary()),
    *(sa.column(name, sa.String()) for name in COLUMNS),
)


_FILL = (
    sa.update(_entries)
    .where(_entries.c.idx == sa.bindparam("old_idx"))
    .values({name: sa.bindparam(f"new_{name}") for name in COLUMNS})
)


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("audit_entries", sa.Column(name, sa.String(512), nullable=True))
    _backfill()
    op.create_index("ix_audit_entries_time_idx", "audit_entries", ["time", "idx"])
    op.drop_index("ix_audit_entries_time", table_name="audit_entries")
    op.create_index("ix_audit_entries_decision_idx", "audit_entries", ["decision", "idx"])
    for name in COLUMNS:
        op.create_index(f"ix_audit_entries_{name}_idx", "audit_entries", [name, "idx"])


def _backfill() -> None:
    """The three columns of every existing entry, from the bytes its leaf hashes."""
    bind = op.get_bind()
    after = -1
    while True:
        rows = bind.execute(
            sa.select(_entries.c.idx, _entries.c.entry)
            .where(_entries.c.idx > after)
            .order_by(_entries.c.idx)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for idx, data in rows:
            entry = json.loads(bytes(data))
            values = {f"new_{name}": _column_text(entry.get(name)) for name in COLUMNS}
            if any(value is not None for value in values.values()):
                updates.append({"old_idx": idx, **values})
        if updates:  # one executemany a batch, not a round trip an entry
            bind.execute(_FILL, updates)
        after = int(rows[-1][0])


def _column_text(value: object) -> str | None:
    """As gateway.audit.repository.column_text, frozen here: NUL kept as U+FFFD."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else None


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_index(f"ix_audit_entries_{name}_idx", table_name="audit_entries")
    op.drop_index("ix_audit_entries_decision_idx", table_name="audit_entries")
    op.create_index("ix_audit_entries_time", "audit_entries", ["time"])
    op.drop_index("ix_audit_entries_time_idx", table_name="audit_entries")
    with op.batch_alter_table("audit_entries") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
