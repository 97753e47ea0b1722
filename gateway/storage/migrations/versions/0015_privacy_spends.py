"""privacy budget: the epsilon each private query spent, per usage state

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-02

One row per private query, numbered like the use it rides with (``seq``), so two replicas
deciding against the same state cannot both record a spend: the second insert collides on
the key. Epsilon is kept in nano-units (an integer: sums stay exact), delta as recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_spends",
        sa.Column("consumer_id", sa.String(64), primary_key=True),
        sa.Column("dataset_id", sa.String(128), primary_key=True),
        sa.Column("policy_hash", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("epsilon_nano", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer_id", "dataset_id", "policy_hash"],
            ["usage_state.consumer_id", "usage_state.dataset_id", "usage_state.policy_hash"],
        ),
    )
    op.create_index(
        "ix_privacy_spends_key_at",
        "privacy_spends",
        ["consumer_id", "dataset_id", "policy_hash", "at"],
    )


def downgrade() -> None:
    op.drop_index("ix_privacy_spends_key_at", table_name="privacy_spends")
    op.drop_table("privacy_spends")
