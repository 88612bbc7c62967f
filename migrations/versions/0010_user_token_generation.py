"""Users: a token generation, raised on a password change so that the JWTs issued before stop working.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Written by hand. Every JWT carries its account's generation when issued, and a JWT whose
generation is no longer the account's is refused like a logged-out one. Existing accounts start
at 0, which is also what a JWT issued before this column existed is taken to carry, so nobody is
signed out by the upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: on SQLite a batch drop_column copies the table and drops the
# old one, and with foreign keys on, dropping users would cascade to every table that refers to it.
# SQLite has dropped columns in place since 3.35.


def upgrade():
    op.add_column("users", sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    op.drop_column("users", "token_generation")
