"""audit log identity: the origin and signing keys fixed with the log

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No row yet: the gateway writes it at its next start (adopting an existing log's
    # origin from its newest checkpoint, which the configured key must have signed).
    op.create_table(
        "audit_identity",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("first_key", sa.String(512), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("rotated_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_identity")
