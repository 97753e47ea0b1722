"""registry version: one counter every change of who may do what increments

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row. Each replica polls it (gateway/registry.py) and reloads its in-memory registry
    # when it moved; the change's own transaction increments it, so it never runs ahead.
    table = op.create_table(
        "registry_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("registry_version")
