"""audit log: entries, tree nodes, signed checkpoints, the head row

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0}])
    op.create_table(
        "audit_entries",
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False, index=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("participant", sa.String(512), nullable=True, index=True),
        sa.Column("dataset", sa.String(512), nullable=True, index=True),
        sa.Column("decision", sa.String(8), nullable=True),
    )
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_checkpoints", "audit_nodes", "audit_entries", "audit_head"):
        op.drop_table(table)
