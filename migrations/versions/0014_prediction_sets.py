"""Predictions: the prediction set, its coverage and the certainty word.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10

Written by hand. Each prediction keeps the findings the model could not rule out at its card's
coverage (class names, most probable first), that coverage (0.9) and "clear" (one finding) or
"uncertain" (more), so the history can be filtered by certainty. Rows from before have none: the
columns are empty for them and the answer shows them as null.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("prediction_set", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("set_coverage", sa.Float(), nullable=True))
        batch.add_column(sa.Column("certainty", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_predictions_owner_id_certainty_created_at", "predictions", ["owner_id", "certainty", "created_at"]
    )


def downgrade():
    op.drop_index("ix_predictions_owner_id_certainty_created_at", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("certainty")
        batch.drop_column("set_coverage")
        batch.drop_column("prediction_set")
