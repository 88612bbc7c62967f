"""Predictions: drop the database check on the modality's name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Written by hand. 0002 listed the four modalities in a check constraint, so a modality added to the
registry (cnn_model/modalities) failed on insert with a constraint error until a migration caught
up. The app validates the name against the registry instead (the upload schema, and the Prediction
model on assignment). Batch mode rebuilds the table on SQLite, which cannot drop a constraint.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CONSTRAINT = "ck_predictions_modality_known"
# The list 0002 created; downgrading restores exactly it (rows of any later modality must go first).
MODALITIES_0002 = ("skin_lesion", "chest_xray", "breast", "cervical_cytology")


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")


def downgrade():
    allowed = ", ".join(f"'{name}'" for name in MODALITIES_0002)
    with op.batch_alter_table("predictions") as batch:
        batch.create_check_constraint(op.f(CONSTRAINT), sa.text(f"modality IN ({allowed})"))
