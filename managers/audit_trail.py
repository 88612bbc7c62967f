"""The audit trail as people read it: each event a sentence with names, a CSV of it, a summary by day and admin."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from cnn_model.modalities import MODALITIES, get_spec
from constants import AuditAction
from db import db
from managers.admin import AuditFilters
from managers.audit import AuditManager
from managers.transactions import unit_of_work
from models import AuditEvent, Prediction, User, utcnow

# What each action is, for a filter's list; and the sentence it makes, from {actor}, {target} (whose), {kind}.
ACTIONS: dict[str, tuple[str, str]] = {
    AuditAction.REGISTER: ("Created an account", "{actor} created an account"),
    AuditAction.LOGIN: ("Signed in", "{actor} signed in"),
    AuditAction.LOGIN_FAILED: ("Failed sign-in", "A sign-in failed"),
    AuditAction.LOGOUT: ("Signed out", "{actor} signed out"),
    AuditAction.PASSWORD_CHANGE: ("Changed a password", "{actor} changed their password"),
    AuditAction.TOKEN_CREATE: ("Created a token", "{actor} created a personal access token"),
    AuditAction.TOKEN_REVOKE: ("Revoked a token", "{actor} revoked a personal access token"),
    AuditAction.USER_CREATE_ADMIN: ("Created an administrator", "{actor} created the administrator {target}"),
    AuditAction.USER_SET_ROLE: ("Changed a role", "{actor} made {target} {role}"),
    AuditAction.USER_DISABLE: ("Disabled an account", "{actor} disabled {target_whose} account"),
    AuditAction.USER_ENABLE: ("Enabled an account", "{actor} enabled {target_whose} account"),
    AuditAction.PREDICTION_CREATE: ("Uploaded an image", "{actor} uploaded {kind_a} image"),
    AuditAction.PREDICTION_DELETE: ("Deleted a result", "{actor} deleted {target_whose} {kind} result"),
    AuditAction.ACCOUNT_EXPORT: ("Exported an account's data", "{actor} exported {target_whose} data"),
    AuditAction.ACCOUNT_DELETE: ("Deleted an account", "{actor} deleted an account"),
    AuditAction.PREDICTION_READ: ("Opened someone's result", "{actor} opened {target_whose} {kind} result"),
    AuditAction.ADMIN_LIST_PREDICTIONS: ("Listed everyone's results", "{actor} listed everyone's results"),
    AuditAction.ADMIN_LIST_USERS: ("Listed the accounts", "{actor} listed the accounts"),
    AuditAction.ADMIN_READ_USER: ("Opened an account", "{actor} opened {target_whose} account"),
    AuditAction.ADMIN_READ_AUDIT: ("Read the audit trail", "{actor} read the audit trail"),
    AuditAction.ADMIN_EXPORT_AUDIT: ("Exported the audit trail", "{actor} exported the audit trail"),
    AuditAction.JOB_CREATE: ("Submitted a batch job", "{actor} submitted a batch job"),
    AuditAction.JOB_CANCEL: ("Cancelled a batch job", "{actor} cancelled a batch job"),
    AuditAction.JOB_READ: ("Opened someone's batch job", "{actor} opened {target_whose} batch job"),
    AuditAction.ADMIN_LIST_JOBS: ("Listed everyone's batch jobs", "{actor} listed everyone's batch jobs"),
}
EXPORT_LIMIT = 50_000
SUMMARY_DAYS = 14
CSV_COLUMNS = ("time_utc", "action", "description", "actor", "actor_id", "target_type", "target_id", "ip")


@dataclass(frozen=True)
class AuditLine:
    """One event as the trail page shows it."""

    event: AuditEvent
    actor: str  # a name or email, or "" where no one (or a deleted account) did it
    action: str  # the action's name in words
    sentence: str


@dataclass(frozen=True)
class AuditExport:
    filename: str
    data: bytes


@dataclass(frozen=True)
class AuditSummary:
    days: list[tuple[date, int]]  # the last SUMMARY_DAYS days, oldest first, with how many events each
    reads: list[tuple[str, int]]  # who opened other people's results in that time, most reads first


def action_name(action: str) -> str:
    return ACTIONS[action][0] if action in ACTIONS else action


def _person(user: User | None) -> str:
    return (user.full_name or user.email) if user is not None else ""


def _whose(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _kind(modality: str | None) -> str:
    """A modality in running text: "chest X-ray", "skin lesion"."""
    if modality not in MODALITIES:
        return "an image"
    name = get_spec(modality).display_name.split(" (")[0]
    return name[0].lower() + name[1:]


class AuditTrailManager:
    @staticmethod
    def describe(events: Iterable[AuditEvent]) -> list[AuditLine]:
        """Each event with the names of who did it and to whom, and what kind of image it was about."""
        events = list(events)
        predictions = {
            str(p.id): p
            for p in db.session.scalars(
                select(Prediction).where(
                    Prediction.id.in_(
                        [
                            uuid.UUID(e.target_id)
                            for e in events
                            if e.target_type == "prediction" and _is_uuid(e.target_id)
                        ]
                    )
                )
            )
        }
        user_ids = {e.actor_id for e in events if e.actor_id}
        for e in events:
            if e.target_type == "user" and _is_uuid(e.target_id):
                user_ids.add(uuid.UUID(e.target_id))
            if _is_uuid(e.details.get("owner_id")):
                user_ids.add(uuid.UUID(e.details["owner_id"]))
        users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
        return [AuditTrailManager._line(e, users, predictions) for e in events]

    @staticmethod
    def _line(event: AuditEvent, users: dict, predictions: dict) -> AuditLine:
        actor = _person(users.get(event.actor_id))
        target_id = event.details.get("owner_id") if event.target_type != "user" else event.target_id
        target_user = users.get(uuid.UUID(target_id)) if _is_uuid(target_id) else None
        target = _person(target_user) or "someone"
        if target_user is not None and target_user.id == event.actor_id:
            target_whose = "their own"
        else:
            target_whose = _whose(target) if target_user is not None else "a deleted account's"
        prediction = predictions.get(event.target_id)
        kind = _kind(event.details.get("modality") or (prediction.modality if prediction else None))
        template = ACTIONS[event.action][1] if event.action in ACTIONS else f"{{actor}}: {event.action}"
        sentence = template.format(
            actor=actor or "Someone",
            target=target,
            target_whose=target_whose,
            kind=kind,
            kind_a=("an " if kind[0] in "aeiou" else "a ") + kind if kind != "an image" else "an",
            role={"admin": "an administrator", "patient": "a patient"}.get(event.details.get("to"), "another role"),
        )
        return AuditLine(event=event, actor=actor, action=action_name(event.action), sentence=sentence)

    @staticmethod
    def export_csv(admin: User, filters: AuditFilters) -> AuditExport:
        """The trail as filters narrow it, newest first, as CSV (at most EXPORT_LIMIT rows); the export is audited."""
        query = select(AuditEvent).where(*filters.conditions()).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        events = list(db.session.scalars(query.limit(EXPORT_LIMIT)))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for line in AuditTrailManager.describe(events):
            e = line.event
            writer.writerow(
                [e.at.isoformat(), e.action, line.sentence, line.actor, e.actor_id or "", e.target_type or ""]
                + [e.target_id or "", e.ip or ""]
            )
        with unit_of_work():
            AuditManager.record(
                AuditAction.ADMIN_EXPORT_AUDIT,
                actor=admin,
                target_type="audit_event",
                details={"filters": filters.described(), "rows": len(events)},
            )
        return AuditExport(filename=f"medsight-audit-{utcnow():%Y%m%d}.csv", data=out.getvalue().encode("utf-8"))

    @staticmethod
    def summary(now: datetime | None = None) -> AuditSummary:
        """Events per day over the last SUMMARY_DAYS days, and reads of other people's results per admin."""
        today = (now or utcnow()).date()
        first = today - timedelta(days=SUMMARY_DAYS - 1)
        since = datetime.combine(first, datetime.min.time(), tzinfo=(now or utcnow()).tzinfo)
        day = func.date(AuditEvent.at)
        counted = db.session.execute(select(day, func.count()).where(AuditEvent.at >= since).group_by(day)).all()
        per_day = {row[0]: row[1] for row in counted}
        days = [
            (first + timedelta(days=n), _count_for(per_day, first + timedelta(days=n))) for n in range(SUMMARY_DAYS)
        ]
        reads = db.session.execute(
            select(AuditEvent.actor_id, func.count())
            .where(AuditEvent.action == AuditAction.PREDICTION_READ.value, AuditEvent.at >= since)
            .group_by(AuditEvent.actor_id)
            .order_by(func.count().desc())
        ).all()
        users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_([a for a, _ in reads if a])))}
        return AuditSummary(days=days, reads=[(_person(users.get(a)) or "A deleted account", n) for a, n in reads])


def _count_for(per_day: dict, day: date) -> int:
    """A day's count whether the database gave the day as a date (PostgreSQL) or as text (SQLite)."""
    return per_day.get(day, per_day.get(day.isoformat(), 0))


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return value is not None
