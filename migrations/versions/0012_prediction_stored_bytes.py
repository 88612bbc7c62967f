"""Predictions: the bytes each one's photo and original take in storage, for the per-account storage quota.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Written by hand. Uploads made before this revision count as 0 bytes: their sizes are known only to
storage, and reading every object back to fill the column is not worth a deploy's time. The quota
is a brake on abuse, not a bill.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode, as in 0010: a batch drop_column on SQLite copies the table.


def upgrade():
    op.add_column("predictions", sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade():
    op.drop_column("predictions", "stored_bytes")
