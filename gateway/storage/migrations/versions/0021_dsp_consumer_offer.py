"""dataspace protocol: the consumer side keeps the Offer it asked for

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-03

``dsp_consumer_negotiations.offer`` holds the Offer the ContractRequestMessage carried, so a
provider's counter-offer can be compared with it (accepted when it is the same, otherwise the
negotiation is terminated with the reason; see gateway/dsp/counter_offers.py). Rows made
before it have none: their counter-offers are refused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"  # written on 0018; re-chained at the merge (0019 landed first)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dsp_consumer_negotiations", sa.Column("offer", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dsp_consumer_negotiations") as batch:
        batch.drop_column("offer")
