"""Spots: an account's named spots, the spot a prediction is of, and a skin photo's lesion embedding.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-14

Written by hand. predictions gains spot_id and the lesion columns by plain ALTER
TABLE (not batch mode: on SQLite a batch copy of predictions would drop the tally triggers of 0009),
and spot_id has no foreign key, as job_id (0013): SQLite cannot drop a column that has one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "spots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("name_key", sa.String(length=80), nullable=False),
        sa.Column("body_site", sa.String(length=32), nullable=True),
        sa.Column("modality", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_spots_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spots")),
    )
    op.create_index("uq_spots_owner_id_name_key", "spots", ["owner_id", "name_key"], unique=True)
    op.add_column("predictions", sa.Column("spot_id", sa.Uuid(), nullable=True))
    op.add_column("predictions", sa.Column("lesion_embedding", sa.LargeBinary(), nullable=True))
    op.add_column("predictions", sa.Column("lesion_distance", sa.Float(), nullable=True))
    op.add_column("predictions", sa.Column("looks_like_other_lesion", sa.Boolean(), nullable=True))
    op.create_index("ix_predictions_spot_id_created_at", "predictions", ["spot_id", "created_at"], unique=False)


def downgrade():
    op.drop_index("ix_predictions_spot_id_created_at", table_name="predictions")
    op.drop_column("predictions", "looks_like_other_lesion")
    op.drop_column("predictions", "lesion_distance")
    op.drop_column("predictions", "lesion_embedding")
    op.drop_column("predictions", "spot_id")
    op.drop_index("uq_spots_owner_id_name_key", table_name="spots")
    op.drop_table("spots")
