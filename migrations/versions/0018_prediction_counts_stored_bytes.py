"""Prediction counts: each user's stored bytes too, kept by the same triggers, for the storage quota.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-21

Written by hand. The storage quota summed an account's stored_bytes over all its predictions on
every upload (twice): a cost that grows with the history, paid on each image of a batch job. The
tally table that already counts each user's predictions (0009) now adds their stored_bytes in the
same trigger, filled from the rows there are. A prediction's stored_bytes is written once, with
its row, and never updated, so insert and delete triggers keep the sum exact.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

POSTGRESQL_FUNCTIONS = """
CREATE OR REPLACE FUNCTION prediction_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO prediction_counts (owner_id, predictions, stored_bytes)
    SELECT owner_id, count(*), coalesce(sum(stored_bytes), 0) FROM inserted GROUP BY owner_id ORDER BY owner_id
    ON CONFLICT (owner_id) DO UPDATE SET
        predictions = prediction_counts.predictions + EXCLUDED.predictions,
        stored_bytes = prediction_counts.stored_bytes + EXCLUDED.stored_bytes;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION prediction_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE prediction_counts SET
        predictions = prediction_counts.predictions - removed.n,
        stored_bytes = prediction_counts.stored_bytes - removed.bytes
    FROM (
        SELECT owner_id, count(*) AS n, coalesce(sum(stored_bytes), 0) AS bytes
        FROM deleted GROUP BY owner_id ORDER BY owner_id
    ) AS removed
    WHERE prediction_counts.owner_id = removed.owner_id;
    RETURN NULL;
END $$;
"""

# 0009's functions, for the downgrade.
POSTGRESQL_FUNCTIONS_0009 = """
CREATE OR REPLACE FUNCTION prediction_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO prediction_counts (owner_id, predictions)
    SELECT owner_id, count(*) FROM inserted GROUP BY owner_id ORDER BY owner_id
    ON CONFLICT (owner_id) DO UPDATE SET predictions = prediction_counts.predictions + EXCLUDED.predictions;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION prediction_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE prediction_counts SET predictions = prediction_counts.predictions - removed.n
    FROM (SELECT owner_id, count(*) AS n FROM deleted GROUP BY owner_id ORDER BY owner_id) AS removed
    WHERE prediction_counts.owner_id = removed.owner_id;
    RETURN NULL;
END $$;
"""

SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER prediction_counts_add AFTER INSERT ON predictions BEGIN
        INSERT INTO prediction_counts (owner_id, predictions, stored_bytes) VALUES (NEW.owner_id, 1, NEW.stored_bytes)
        ON CONFLICT (owner_id) DO UPDATE SET
            predictions = predictions + 1, stored_bytes = stored_bytes + NEW.stored_bytes;
    END
    """,
    """
    CREATE TRIGGER prediction_counts_remove AFTER DELETE ON predictions BEGIN
        UPDATE prediction_counts SET predictions = predictions - 1, stored_bytes = stored_bytes - OLD.stored_bytes
        WHERE owner_id = OLD.owner_id;
    END
    """,
)

SQLITE_TRIGGERS_0009 = (
    """
    CREATE TRIGGER prediction_counts_add AFTER INSERT ON predictions BEGIN
        INSERT INTO prediction_counts (owner_id, predictions) VALUES (NEW.owner_id, 1)
        ON CONFLICT (owner_id) DO UPDATE SET predictions = predictions + 1;
    END
    """,
    """
    CREATE TRIGGER prediction_counts_remove AFTER DELETE ON predictions BEGIN
        UPDATE prediction_counts SET predictions = predictions - 1 WHERE owner_id = OLD.owner_id;
    END
    """,
)


def upgrade():
    op.add_column("prediction_counts", sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE prediction_counts SET stored_bytes = coalesce(("
        "SELECT sum(predictions.stored_bytes) FROM predictions WHERE predictions.owner_id = prediction_counts.owner_id"
        "), 0)"
    )
    _replace_triggers(POSTGRESQL_FUNCTIONS, SQLITE_TRIGGERS)


def downgrade():
    _replace_triggers(POSTGRESQL_FUNCTIONS_0009, SQLITE_TRIGGERS_0009)
    op.drop_column("prediction_counts", "stored_bytes")


def _replace_triggers(postgresql_functions: str, sqlite_triggers: tuple[str, ...]) -> None:
    """PostgreSQL: the triggers call the functions by name, so replacing the functions is enough. SQLite: the
    triggers hold their statements, so they are dropped and made again."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(postgresql_functions)
        return
    op.execute("DROP TRIGGER IF EXISTS prediction_counts_add")
    op.execute("DROP TRIGGER IF EXISTS prediction_counts_remove")
    for statement in sqlite_triggers:
        op.execute(statement)
