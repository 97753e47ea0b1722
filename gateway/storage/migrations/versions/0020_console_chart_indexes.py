"""audit entries: a covering index for the console's activity charts

Revision ID: 0020
Revises: 0011
Create Date: 2026-12-03

The time chart groups a window's access decisions by dataset and hour or day, the activity
view and the top-consumers chart by dataset, participant and decision: the covering
``(event, time, dataset, participant, decision)`` index answers both without reading the
table (before, SQLite walked every entry of the window through the time index). Measured
on SQLite, a month's window, on a loaded machine: on 250,000 entries the time chart's query
557 -> 313 ms (best of five, with ``(event, time, dataset)`` only); on 30,000 entries with
this index, time chart 63 -> 39 ms and activity 68 -> 63 ms (best of seven). A ``(decision,
time)`` index for the denials chart was tried and left out: without ``ANALYZE`` statistics
SQLite then answers "newest denials" in the entries view by sorting every denial.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_entries_event_time_activity",
        "audit_entries",
        ["event", "time", "dataset", "participant", "decision"],
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_event_time_activity", table_name="audit_entries")
