"""Predictions: remember whether the modality gate chose the modality.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Written by hand. Uploads may leave the modality to the gate (modality left out or 'auto'); the
history then says the kind was detected rather than named. Rows from before were all named.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("modality_detected", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("modality_detected")
