"""the write path: rate windows as bucketed counters; open exchanges

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

``usage_buckets`` replaces reading every use of 31 days for rate limits: uses per (usage
state, width, bucket). Existing uses of the last 31 days are carried over from
``usage_events`` into every width, so an upgrade does not reset a rate window.
``open_exchanges`` holds permitted exchanges until their completion entry is written.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0011"
down_revision = "0014"
branch_labels = None
depends_on = None

WIDTHS = (1, 60, 3600, 86400)  # as gateway.agreements.usage.WIDTHS, frozen here

_events = sa.table(
    "usage_events",
    sa.column("consumer_id", sa.String()),
    sa.column("dataset_id", sa.String()),
    sa.column("policy_hash", sa.String()),
    sa.column("at", UTCDateTime()),
)


def upgrade() -> None:
    buckets = op.create_table(
        "usage_buckets",
        sa.Column("consumer_id", sa.String(64), primary_key=True),
        sa.Column("dataset_id", sa.String(128), primary_key=True),
        sa.Column("policy_hash", sa.String(128), primary_key=True),
        sa.Column("width", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("bucket", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id", "dataset_id", "policy_hash"],
            ["usage_state.consumer_id", "usage_state.dataset_id", "usage_state.policy_hash"],
        ),
    )
    op.create_table(
        "open_exchanges",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False, index=True),
        sa.Column("consumer_id", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
    )
    since = datetime.now(UTC) - timedelta(days=31)
    rows = op.get_bind().execute(sa.select(_events).where(_events.c.at > since)).all()
    counted: Counter[tuple[str, str, str, int, int]] = Counter()
    for row in rows:
        seconds = int(row.at.timestamp())
        for width in WIDTHS:
            key = (row.consumer_id, row.dataset_id, row.policy_hash, width, seconds // width)
            counted[key] += 1
    if counted:
        names = ("consumer_id", "dataset_id", "policy_hash", "width", "bucket")
        op.bulk_insert(buckets, [{**dict(zip(names, k, strict=True)), "uses": n}
                                 for k, n in counted.items()])  # fmt: skip


def downgrade() -> None:
    op.drop_table("open_exchanges")
    op.drop_table("usage_buckets")
