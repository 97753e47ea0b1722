"""exchange: gateway instances and when each was last seen

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

``gateway_instances`` holds one row per gateway process (``instance_name``) with the time it
last refreshed it. The open exchanges of an instance not seen for ``instance_stale_after``
are closed as interrupted by another replica (see gateway/exchange/service.py). Before this
table, only a start under the same name closed them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_instances",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_instances")
