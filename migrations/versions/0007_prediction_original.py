"""Predictions: where a DICOM upload's de-identified file is kept, beside its PNG preview.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Written by hand. Uploads in other formats have no such file; the column is empty for them and for
every row from before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("original_key", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("original_key")
