"""Jobs from the PACS: a job's source, and with each PACS item its original UIDs and its SR's delivery.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-20

Written by hand. Plain ADD COLUMN / DROP COLUMN on both databases (not batch mode, as in 0013): the
new columns have no constraint, and the index on report_status is dropped before its column.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UID = sa.String(length=64)


def upgrade():
    op.add_column("jobs", sa.Column("source", sa.String(length=16), server_default="upload", nullable=False))
    op.add_column("job_items", sa.Column("pacs_study_uid", UID, nullable=True))
    op.add_column("job_items", sa.Column("pacs_series_uid", UID, nullable=True))
    op.add_column("job_items", sa.Column("pacs_instance_uid", UID, nullable=True))
    op.add_column("job_items", sa.Column("report_status", sa.String(length=16), nullable=True))
    op.add_column("job_items", sa.Column("report_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("job_items", sa.Column("report_error", sa.String(length=64), nullable=True))
    op.add_column("job_items", sa.Column("report_sent_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_job_items_report_status", "job_items", ["report_status"], unique=False)


def downgrade():
    op.drop_index("ix_job_items_report_status", table_name="job_items")
    for column in (
        "report_sent_at",
        "report_error",
        "report_attempts",
        "report_status",
        "pacs_instance_uid",
        "pacs_series_uid",
        "pacs_study_uid",
    ):
        op.drop_column("job_items", column)
    op.drop_column("jobs", "source")
