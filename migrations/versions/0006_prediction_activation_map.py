"""Predictions: keep the class activation map until the heatmap is first rendered from it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Written by hand. An upload no longer renders its heatmap PNG: it keeps the predicted class's
activation map (a few cells a side, under 100 bytes) with the row and reserves the heatmap's
storage key; the first request for the heatmap renders it there and clears the map. Rows from
before have their heatmap stored already, so the column is empty for them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("activation_map", sa.LargeBinary(), nullable=True))


def downgrade():
    # A heatmap not yet rendered is lost with its map: clear its key, so no reader expects the object.
    op.execute("UPDATE predictions SET heatmap_key = NULL WHERE activation_map IS NOT NULL")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("activation_map")
