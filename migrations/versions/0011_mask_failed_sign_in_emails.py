"""Audit trail: failed sign-ins no longer keep what was typed as the email.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Written by hand, data only. A failed sign-in kept the typed email as it was, and people type their
password into that field. Rewritten as the app now records them (managers.auth.attempted_email,
copied here so that later changes to the app do not change what this revision does): a sign-in
that matched an account keeps only the account's id (target_id); an address that matched none is
masked (j***@example.org); anything else becomes a hash keyed with JWT_SECRET_KEY
(unparsed:1a2b3c4d). There is no way back: the downgrade leaves the rows as they are.
"""

import hashlib
import hmac
import re

import sqlalchemy as sa
from alembic import op
from flask import current_app

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LOGIN_FAILED = "auth.login_failed"
EMAIL_SHAPE = re.compile(r"[^@\s]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}")
ALREADY_HASHED = re.compile(r"unparsed:[0-9a-f]{8}")
BATCH = 1000

audit_events = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("action", sa.String()),
    sa.column("target_id", sa.String()),
    sa.column("details", sa.JSON()),
)


def _attempted_email(email: str, key: bytes) -> str:
    if ALREADY_HASHED.fullmatch(email):  # written by the app since (a masked address masks to itself)
        return email
    if EMAIL_SHAPE.fullmatch(email):
        local, domain = email.rsplit("@", 1)
        return f"{local[0]}***@{domain}"
    digest = hmac.new(key, b"failed-sign-in-email\0" + email.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"unparsed:{digest.hexdigest()[:8]}"


def _rewritten(details: dict, target_id: str | None, key: bytes) -> dict:
    rest = {name: value for name, value in details.items() if name != "email"}
    if target_id is not None or not isinstance(details["email"], str):
        return rest
    return {**rest, "email": _attempted_email(details["email"].strip().lower(), key)}


def upgrade():
    connection = op.get_bind()
    key = current_app.config["JWT_SECRET_KEY"].encode()
    failed = sa.select(audit_events.c.id, audit_events.c.target_id, audit_events.c.details).where(
        audit_events.c.action == LOGIN_FAILED
    )
    last_id = None
    while True:  # in batches by id, so a trail of millions of attempts is never held at once
        page = failed.order_by(audit_events.c.id).limit(BATCH)
        rows = connection.execute(page if last_id is None else page.where(audit_events.c.id > last_id)).all()
        for row in rows:
            if isinstance(row.details, dict) and "email" in row.details:
                details = _rewritten(row.details, row.target_id, key)
                connection.execute(audit_events.update().where(audit_events.c.id == row.id).values(details=details))
        if len(rows) < BATCH:
            return
        last_id = rows[-1].id


def downgrade():
    pass
