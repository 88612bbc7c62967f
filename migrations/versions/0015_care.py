"""The care loop: the clinician role, results shared with clinicians, their reviews, and share links.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12

Written by hand. users.role may now be 'clinician'. PostgreSQL replaces the check constraint; SQLite
cannot alter one, and rebuilding users (batch mode) would drop the old table, which with foreign
keys on cascades to every row that refers to an account. A wider CHECK reads every existing row the
same, so on SQLite the stored CREATE TABLE text is edited in place, the procedure SQLite's
documentation gives for changes that leave the table's contents as they are ("Making Other Kinds Of
Table Schema Changes", writable_schema), and the schema version raised so connections reread it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

CONSTRAINT = "ck_users_role_known"
ROLES_BEFORE = "role IN ('patient', 'admin')"
ROLES_AFTER = "role IN ('patient', 'admin', 'clinician')"


def _set_role_check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
        bind.exec_driver_sql("PRAGMA writable_schema=ON")
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'users'", (old, new)
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
        return
    op.drop_constraint(op.f(CONSTRAINT), "users", type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), "users", sa.text(new))


def upgrade():
    _set_role_check(ROLES_BEFORE, ROLES_AFTER)
    op.create_table(
        "prediction_shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prediction_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.Uuid(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_prediction_shares_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["users.id"], name=op.f("fk_prediction_shares_clinician_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_shares")),
    )
    op.create_index(
        "ix_prediction_shares_clinician_id_prediction_id", "prediction_shares", ["clinician_id", "prediction_id"]
    )
    op.create_index("ix_prediction_shares_prediction_id", "prediction_shares", ["prediction_id"])
    op.create_table(
        "prediction_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prediction_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.Uuid(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("finding", sa.String(length=120), nullable=True),
        sa.Column("comment", sa.String(length=1000), nullable=True),
        sa.Column("modality", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('agree', 'disagree', 'amend')", name=op.f("ck_prediction_reviews_verdict_known")
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_prediction_reviews_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["users.id"], name=op.f("fk_prediction_reviews_clinician_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_reviews")),
    )
    op.create_index(
        "ix_prediction_reviews_prediction_id_created_at", "prediction_reviews", ["prediction_id", "created_at"]
    )
    op.create_index("ix_prediction_reviews_modality_model_version", "prediction_reviews", ["modality", "model_version"])
    op.create_table(
        "share_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prediction_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_share_links_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_share_links_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_share_links_token_hash")),
    )
    op.create_index("ix_share_links_owner_id_expires_at", "share_links", ["owner_id", "expires_at"])


def downgrade():
    op.drop_index("ix_share_links_owner_id_expires_at", table_name="share_links")
    op.drop_table("share_links")
    op.drop_index("ix_prediction_reviews_modality_model_version", table_name="prediction_reviews")
    op.drop_index("ix_prediction_reviews_prediction_id_created_at", table_name="prediction_reviews")
    op.drop_table("prediction_reviews")
    op.drop_index("ix_prediction_shares_prediction_id", table_name="prediction_shares")
    op.drop_index("ix_prediction_shares_clinician_id_prediction_id", table_name="prediction_shares")
    op.drop_table("prediction_shares")
    # Clinicians go back to patients first: the narrower check must hold for every row.
    op.execute("UPDATE users SET role = 'patient' WHERE role = 'clinician'")
    _set_role_check(ROLES_AFTER, ROLES_BEFORE)
