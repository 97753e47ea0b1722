"""dataspace protocol: the provider's callback outbox

Revision ID: 0017
Revises: 0020
Create Date: 2026-12-03

``dsp_outbox`` holds every message the provider sends to a consumer's ``callbackAddress``,
written in the transaction of the state change it follows, so a message a crash or restart
interrupted is sent again (see gateway/dsp/outbox.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0017"
down_revision = "0020"  # written on 0011; re-chained after main's 0020 was merged in
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dsp_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("process", sa.String(100), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("address", sa.String(2048), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("token_thumbprint", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dsp_outbox_process", "dsp_outbox", ["process"])
    op.create_index("ix_dsp_outbox_due", "dsp_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_dsp_outbox_due", table_name="dsp_outbox")
    op.drop_index("ix_dsp_outbox_process", table_name="dsp_outbox")
    op.drop_table("dsp_outbox")
