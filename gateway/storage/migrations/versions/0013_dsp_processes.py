"""dataspace protocol: contract negotiations and transfer processes (provider side)

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dsp_negotiations",
        sa.Column("provider_pid", sa.String(80), primary_key=True),
        sa.Column("consumer_pid", sa.String(256), nullable=False),
        sa.Column("consumer_id", sa.String(64), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("dataset_id", sa.String(128), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("offer_id", sa.String(512), nullable=False),
        sa.Column("callback_address", sa.String(2048), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("agreement_id", sa.String(64), sa.ForeignKey("agreements.id"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dsp_negotiations_consumer_id", "dsp_negotiations", ["consumer_id"])
    op.create_index("ix_dsp_negotiations_agreement_id", "dsp_negotiations", ["agreement_id"])
    op.create_table(
        "dsp_transfers",
        sa.Column("provider_pid", sa.String(80), primary_key=True),
        sa.Column("consumer_pid", sa.String(256), nullable=False),
        sa.Column("consumer_id", sa.String(64), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("agreement_id", sa.String(64), sa.ForeignKey("agreements.id"), nullable=False),
        sa.Column("dataset_id", sa.String(128), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("callback_address", sa.String(2048), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("token_jti", sa.String(64), nullable=True),
        sa.Column("token_expires_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dsp_transfers_consumer_id", "dsp_transfers", ["consumer_id"])


def downgrade() -> None:
    op.drop_index("ix_dsp_transfers_consumer_id", "dsp_transfers")
    op.drop_table("dsp_transfers")
    op.drop_index("ix_dsp_negotiations_agreement_id", "dsp_negotiations")
    op.drop_index("ix_dsp_negotiations_consumer_id", "dsp_negotiations")
    op.drop_table("dsp_negotiations")
