"""dataspace protocol: the consumer side's negotiations and transfer processes

Revision ID: 0018
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0018"
down_revision = "0017"  # written on 0011; re-chained at the merge
branch_labels = None
depends_on = None


def _common() -> list[sa.Column[object]]:
    return [
        sa.Column("provider_pid", sa.String(256), nullable=True),
        sa.Column("provider_url", sa.String(2048), nullable=False),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(64), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("dataset_id", sa.String(256), nullable=False),
    ]


def _times() -> list[sa.Column[object]]:
    return [
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "dsp_consumer_negotiations",
        sa.Column("consumer_pid", sa.String(80), primary_key=True),
        *_common(),
        sa.Column("offer_id", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("agreement_id", sa.String(512), nullable=True),
        *_times(),
    )
    op.create_index(
        "ix_dsp_consumer_negotiations_requested_by", "dsp_consumer_negotiations", ["requested_by"]
    )
    op.create_table(
        "dsp_consumer_transfers",
        sa.Column("consumer_pid", sa.String(80), primary_key=True),
        sa.Column(
            "negotiation_pid",
            sa.String(80),
            sa.ForeignKey("dsp_consumer_negotiations.consumer_pid"),
            nullable=False,
        ),
        *_common(),
        sa.Column("agreement_id", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", UTCDateTime(), nullable=True),
        *_times(),
    )
    op.create_index(
        "ix_dsp_consumer_transfers_requested_by", "dsp_consumer_transfers", ["requested_by"]
    )


def downgrade() -> None:
    op.drop_index("ix_dsp_consumer_transfers_requested_by", "dsp_consumer_transfers")
    op.drop_table("dsp_consumer_transfers")
    op.drop_index("ix_dsp_consumer_negotiations_requested_by", "dsp_consumer_negotiations")
    op.drop_table("dsp_consumer_negotiations")
