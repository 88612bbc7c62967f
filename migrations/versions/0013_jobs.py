"""Batch jobs: jobs, their items, and the job a prediction was made by.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Written by hand. predictions gains job_id and job_entry_sha256 by plain ALTER TABLE (not batch
mode: on SQLite a batch copy of predictions would drop the tally triggers of 0009), and a unique
index on the pair: the idempotency key of a job's entry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("modality", sa.String(length=32), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_jobs_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_owner_id_created_at", "jobs", ["owner_id", "created_at"], unique=False)
    op.add_column("predictions", sa.Column("job_id", sa.Uuid(), nullable=True))
    op.add_column("predictions", sa.Column("job_entry_sha256", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_predictions_job_id_job_entry_sha256", "predictions", ["job_id", "job_entry_sha256"], unique=True
    )
    op.create_table(
        "job_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chunk_key", sa.String(length=255), nullable=True),
        sa.Column("prediction_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_items_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_job_items_prediction_id_predictions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_items")),
        sa.UniqueConstraint("job_id", "position", name=op.f("uq_job_items_job_id")),
    )
    op.create_index(
        "ix_job_items_job_id_chunk_key_status", "job_items", ["job_id", "chunk_key", "status"], unique=False
    )
    op.create_index("ix_job_items_job_id_sha256", "job_items", ["job_id", "sha256"], unique=False)
    op.create_index("ix_job_items_prediction_id", "job_items", ["prediction_id"], unique=False)


def downgrade():
    op.drop_index("ix_job_items_prediction_id", table_name="job_items")
    op.drop_index("ix_job_items_job_id_sha256", table_name="job_items")
    op.drop_index("ix_job_items_job_id_chunk_key_status", table_name="job_items")
    op.drop_table("job_items")
    op.drop_index("uq_predictions_job_id_job_entry_sha256", table_name="predictions")
    op.drop_column("predictions", "job_entry_sha256")
    op.drop_column("predictions", "job_id")
    op.drop_index("ix_jobs_owner_id_created_at", table_name="jobs")
    op.drop_table("jobs")
