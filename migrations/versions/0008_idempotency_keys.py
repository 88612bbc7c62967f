"""Idempotency keys: the Idempotency-Key a client sent with an upload, and the prediction it made.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Written by hand. One key per user names one prediction for 24 hours (older keys are replaced when
reused); deleting the prediction or the user deletes the key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("prediction_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_idempotency_keys_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_keys_user_id")),
    )
    op.create_index(op.f("ix_idempotency_keys_prediction_id"), "idempotency_keys", ["prediction_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_idempotency_keys_prediction_id"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
