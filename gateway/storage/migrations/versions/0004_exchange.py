"""policy versions, datasets, agreements, agreement uses

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("hash", sa.String(128), primary_key=True),
        sa.Column("uid", sa.String(512), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.String(64), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("connector", sa.JSON(), nullable=False),
        sa.Column(
            "policy_hash", sa.String(128), sa.ForeignKey("policy_versions.hash"), nullable=False
        ),
        sa.Column("approval", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "dataset_id", sa.String(128), sa.ForeignKey("datasets.id"), nullable=False, index=True
        ),
        sa.Column(
            "consumer_id",
            sa.String(64),
            sa.ForeignKey("participants.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("purpose", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column(
            "policy_hash", sa.String(128), sa.ForeignKey("policy_versions.hash"), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "agreement_uses",
        sa.Column("agreement_id", sa.String(64), sa.ForeignKey("agreements.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("agreement_uses", "agreements", "datasets", "policy_versions"):
        op.drop_table(table)
