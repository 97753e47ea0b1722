"""audit entries: indexes for the officer console (filters in index order, counts)

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-02

Measured by bench/console.py on 1,000,000 entries: a filter on one column walks
``(column, idx)`` in index order and stops after a page (instead of sorting every match),
and the counts by event and decision read one covering index (instead of the table).
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_entries_participant_idx", "audit_entries", ["participant", "idx"])
    op.create_index("ix_audit_entries_dataset_idx", "audit_entries", ["dataset", "idx"])
    op.create_index("ix_audit_entries_event_idx", "audit_entries", ["event", "idx"])
    op.create_index(
        "ix_audit_entries_event_decision_time", "audit_entries", ["event", "decision", "time"]
    )
    # the composite indexes above lead with these columns: they replace them
    op.drop_index("ix_audit_entries_participant", table_name="audit_entries")
    op.drop_index("ix_audit_entries_dataset", table_name="audit_entries")


def downgrade() -> None:
    op.create_index("ix_audit_entries_dataset", "audit_entries", ["dataset"])
    op.create_index("ix_audit_entries_participant", "audit_entries", ["participant"])
    op.drop_index("ix_audit_entries_event_decision_time", table_name="audit_entries")
    op.drop_index("ix_audit_entries_event_idx", table_name="audit_entries")
    op.drop_index("ix_audit_entries_dataset_idx", table_name="audit_entries")
    op.drop_index("ix_audit_entries_participant_idx", table_name="audit_entries")
