"""usage state per (consumer, dataset, policy version); one live agreement; revocation holds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Uses move from agreements to ``usage_state`` (counts, the start for elapsedTime) and
``usage_events`` (rate windows), so that a new agreement cannot reset a limit. Existing
data is carried over: the counts of a consumer's agreements for a dataset under one policy
version are added up, their uses renumbered, and the start is the earliest agreement's
creation (never later than its approval: elapsedTime limits can only end sooner). Where the
old code let a consumer hold several live agreements for one dataset, the newest stays and
the others are terminated, so that the partial unique index can be built.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LIVE = ("requested", "active")
SUPERSEDED = "superseded: one live agreement per consumer and dataset (revision 0006)"

_agreements = sa.table(
    "agreements",
    sa.column("id", sa.String()),
    sa.column("consumer_id", sa.String()),
    sa.column("dataset_id", sa.String()),
    sa.column("policy_hash", sa.String()),
    sa.column("state", sa.String()),
    sa.column("reason", sa.Text()),
    sa.column("use_count", sa.Integer()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("decided_at", UTCDateTime()),
)
_uses = sa.table(
    "agreement_uses",
    sa.column("agreement_id", sa.String()),
    sa.column("seq", sa.Integer()),
    sa.column("at", UTCDateTime()),
)


def upgrade() -> None:
    _create_tables()
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_agreements).order_by(_agreements.c.created_at, _agreements.c.id)
    ).all()
    _end_extra_live(bind, rows, datetime.now(UTC))
    _carry_usage(bind, rows)
    op.drop_table("agreement_uses")
    op.create_index(
        "uq_agreements_live",
        "agreements",
        ["consumer_id", "dataset_id"],
        unique=True,
        sqlite_where=sa.text("state IN ('requested', 'active')"),
        postgresql_where=sa.text("state IN ('requested', 'active')"),
    )


def _create_tables() -> None:
    op.create_table(
        "usage_state",
        sa.Column("consumer_id", sa.String(64), sa.ForeignKey("participants.id"), primary_key=True),
        sa.Column("dataset_id", sa.String(128), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column(
            "policy_hash", sa.String(128), sa.ForeignKey("policy_versions.hash"), primary_key=True
        ),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "usage_events",
        sa.Column("consumer_id", sa.String(64), primary_key=True),
        sa.Column("dataset_id", sa.String(128), primary_key=True),
        sa.Column("policy_hash", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
        sa.ForeignKeyConstraint(
            ["consumer_id", "dataset_id", "policy_hash"],
            ["usage_state.consumer_id", "usage_state.dataset_id", "usage_state.policy_hash"],
        ),
    )
    op.create_table(
        "agreement_holds",
        sa.Column("consumer_id", sa.String(64), sa.ForeignKey("participants.id"), primary_key=True),
        sa.Column("dataset_id", sa.String(128), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("agreement_id", sa.String(64), sa.ForeignKey("agreements.id"), nullable=False),
        sa.Column("held_at", UTCDateTime(), nullable=False),
    )


def _end_extra_live(bind: sa.Connection, rows: Sequence[Any], now: datetime) -> None:
    """Keep the newest live agreement of each consumer and dataset; terminate the others."""
    live: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:  # oldest first
        if row.state in LIVE:
            live[(row.consumer_id, row.dataset_id)].append(row.id)
    extra = [agreement_id for ids in live.values() for agreement_id in ids[:-1]]
    if extra:
        bind.execute(
            sa.update(_agreements)
            .where(_agreements.c.id.in_(extra))
            .values(state="terminated", reason=SUPERSEDED, updated_at=now, decided_at=now)
        )


def _carry_usage(bind: sa.Connection, rows: Sequence[Any]) -> None:
    """Add up each (consumer, dataset, policy version)'s uses and renumber their events."""
    key_of = {row.id: (row.consumer_id, row.dataset_id, row.policy_hash) for row in rows}
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    starts: dict[tuple[str, str, str], datetime] = {}
    for row in rows:
        if row.state == "active" or row.use_count > 0:
            key = key_of[row.id]
            counts[key] += row.use_count
            starts.setdefault(key, row.created_at)  # rows come oldest first
    events: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    for use in bind.execute(sa.select(_uses).order_by(_uses.c.at, _uses.c.seq)).all():
        events[key_of[use.agreement_id]].append(use.at)
    state = sa.table("usage_state", *(sa.column(n) for n in ("consumer_id", "dataset_id",
                     "policy_hash", "use_count")), sa.column("started_at", UTCDateTime()),
                     sa.column("updated_at", UTCDateTime()))  # fmt: skip
    spent = sa.table("usage_events", *(sa.column(n) for n in ("consumer_id", "dataset_id",
                     "policy_hash", "seq")), sa.column("at", UTCDateTime()))  # fmt: skip
    for key, start in starts.items():
        names = dict(zip(("consumer_id", "dataset_id", "policy_hash"), key, strict=True))
        times = events.get(key, [])
        bind.execute(sa.insert(state).values(
            **names, use_count=max(counts[key], len(times)), started_at=start,
            updated_at=times[-1] if times else start,
        ))  # fmt: skip
        if times:
            bind.execute(
                sa.insert(spent),
                [{**names, "seq": seq, "at": at} for seq, at in enumerate(times, start=1)],
            )


def downgrade() -> None:
    op.drop_index("uq_agreements_live", table_name="agreements")
    op.create_table(  # the uses themselves are not carried back: counts stay in usage_state
        "agreement_uses",
        sa.Column("agreement_id", sa.String(64), sa.ForeignKey("agreements.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
    )
    for table in ("agreement_holds", "usage_events", "usage_state"):
        op.drop_table(table)
