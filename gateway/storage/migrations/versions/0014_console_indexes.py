"""audit entries: indexes for the officer console (event filter, counts by period)

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries of one event type, paged by index (keyset): the index walk stops after a page.
    op.create_index("ix_audit_entries_event_idx", "audit_entries", ["event", "idx"])
    # Counts of a period by event and decision: answered from this index alone.
    op.create_index(
        "ix_audit_entries_time_event_decision", "audit_entries", ["time", "event", "decision"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_time_event_decision", table_name="audit_entries")
    op.drop_index("ix_audit_entries_event_idx", table_name="audit_entries")
