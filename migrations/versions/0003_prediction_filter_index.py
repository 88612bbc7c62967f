"""Predictions: an index for the history's filters (modality, is_positive).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Written by hand. EXPLAIN ANALYZE on 1M rows (bench/history.py) showed the filtered history's count
(owner + modality + is_positive) as a parallel sequential scan of the whole table (~330 ms); with
(owner_id, modality, is_positive, created_at) it is an index-only range scan (~3 ms), the filtered
page is read in order from the same index, and owner + is_positive alone is answered from it too.
One index, not one per filter combination: every prediction written pays for each.

Plain CREATE INDEX (inside the migration's transaction, portable to SQLite): it blocks writes to
predictions while it builds (about 3 s per million rows on the bench machine). For a much larger
table, build it beforehand with CREATE INDEX CONCURRENTLY under the same name.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "ix_predictions_owner_id_modality_is_positive_created_at"


def upgrade():
    op.create_index(
        INDEX, "predictions", ["owner_id", "modality", "is_positive", "created_at"], unique=False, if_not_exists=True
    )


def downgrade():
    op.drop_index(INDEX, table_name="predictions")
