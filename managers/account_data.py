"""A person's own data: all of it in one zip, or all of it gone.

Export: a zip with account.json (the account, its tokens without secrets, every prediction with its
model's name, version and figures, the spots it follows with their predictions' ids in time order, and
what the account did, from which address; failed sign-ins to it only by their time, since anyone may
have made them) and every stored file of the account's predictions: photos, heatmaps, and the
de-identified DICOM files.

Deletion: first the account is disabled, committed, so that no new request of it (an upload among
them) is let in; then, in one transaction that holds the account's row (an upload still in flight
cannot add a record to it: it fails cleanly and removes its own stored photo), every row of the
account (its spots among them) and every trace of it in the audit trail: events it did or that were
about it keep their action and time but lose who, from where and which record; ids and emails named in
other events' details are blanked, and so are the spot names its spots' events kept. One audit event
remains that says an account was deleted, by whom (the admin, or nobody for the person themselves),
with counts only. The stored objects of exactly the rows deleted go after the commit, so none
committed meanwhile is missed; a second pass takes heatmaps that a view in flight may have drawn
meanwhile. Storage is checked before anything changes (an outage is a 503); an object that cannot be
removed after the commit is left to the storage sweep.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import String, cast, delete, or_, select, update

from constants import AuditAction
from db import db
from managers.audit import AuditManager
from managers.hospital_formats import MODEL_CARDS_PATH, HospitalFormats
from managers.models import ModelManager
from managers.predictions import PredictionManager, thumbnail_key
from managers.sign_in_backoff import SignInBackoff
from managers.transactions import unit_of_work
from managers.users import UserManager
from models import ApiToken, AuditEvent, Job, JobItem, Prediction, RevokedToken, Spot, User, utcnow
from services.storage import ObjectNotFound, Storage
from utils.errors import Conflict, StorageUnavailable

log = logging.getLogger(__name__)

EXPORT_FORMAT_VERSION = 1
REDACTED = "[deleted account]"
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/webp": "webp",
    "application/dicom": "dcm",
}


@dataclass(frozen=True)
class AccountExport:
    filename: str
    data: bytes


def _storage() -> Storage:
    return current_app.extensions["storage"]


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _activity_entry(event: AuditEvent) -> dict[str, Any]:
    """One event of the account's activity; the address only where the owner is the one who acted."""
    # A failed sign-in is recorded under the account it tried, but anyone may have typed it: the
    # address is theirs, not the owner's, and the owner is told only when it happened.
    performed_by_owner = event.action != AuditAction.LOGIN_FAILED
    return {
        "action": event.action,
        "at": _iso(event.at),
        "target_type": event.target_type,
        "ip": event.ip if performed_by_owner else None,
    }


@dataclass(frozen=True)
class _RemovedObjects:
    """What a deleted account's rows named in storage."""

    keys: list[str]
    pending_heatmaps: list[str]
    thumbnails: list[str]  # drawn on first view, so possibly never stored


def _delete_objects(storage: Storage, keys: list[str]) -> None:
    """Remove these objects; one that cannot go now is left to the storage sweep (no record names it any more)."""
    failed = 0
    for key in keys:
        try:
            storage.delete_object(key)
        except StorageUnavailable:
            failed += 1
    if failed:
        log.error("%d stored objects of a deleted account could not be removed; the storage sweep will", failed)


def _spots_of(user: User, predictions: list[Prediction]) -> list[dict[str, Any]]:
    """user's spots, first made first, each with the ids of its predictions in time order."""
    spots = db.session.scalars(select(Spot).where(Spot.owner_id == user.id).order_by(Spot.created_at, Spot.id))
    return [
        {
            "id": str(spot.id),
            "name": spot.name,
            "body_site": spot.body_site,
            "modality": spot.modality,
            "created_at": _iso(spot.created_at),
            "prediction_ids": [str(p.id) for p in predictions if p.spot_id == spot.id],  # predictions are in time order
        }
        for spot in spots
    ]


def _predictions_of(user: User) -> list[Prediction]:
    query = select(Prediction).where(Prediction.owner_id == user.id).order_by(Prediction.created_at, Prediction.id)
    return list(db.session.scalars(query))


class AccountDataManager:
    @staticmethod
    def export(user: User, *, actor: User | None = None) -> AccountExport:
        """Everything kept about user, as a zip; actor is the admin exporting someone else's data (audited)."""
        storage = _storage()
        predictions = _predictions_of(user)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            entries = [AccountDataManager._export_prediction(archive, storage, p) for p in predictions]
            document = {
                "format_version": EXPORT_FORMAT_VERSION,
                "exported_at": _iso(utcnow()),
                "account": {
                    "id": str(user.id),
                    "email": user.email,
                    "full_name": user.full_name,
                    "role": user.role,
                    "is_active": user.is_active,
                    "created_at": _iso(user.created_at),
                    "updated_at": _iso(user.updated_at),
                },
                "personal_access_tokens": [
                    {
                        "name": token.name,
                        "prefix": token.prefix,
                        "scopes": token.scopes,
                        "created_at": _iso(token.created_at),
                        "last_used_at": _iso(token.last_used_at),
                        "expires_at": _iso(token.expires_at),
                        "revoked_at": _iso(token.revoked_at),
                    }
                    for token in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
                ],
                "predictions": entries,
                "spots": _spots_of(user, predictions),
                "activity": [
                    _activity_entry(event)
                    for event in db.session.scalars(
                        select(AuditEvent).where(AuditEvent.actor_id == user.id).order_by(AuditEvent.at)
                    )
                ],
            }
            archive.writestr("account.json", json.dumps(document, indent=2, ensure_ascii=False))
        with unit_of_work():
            AuditManager.record(
                AuditAction.ACCOUNT_EXPORT,
                actor=actor or user,
                target_type="user",
                target_id=user.id,
                details={"predictions": len(predictions), "by": "admin" if actor is not None else "self"},
            )
        return AccountExport(filename=f"medsight-export-{utcnow():%Y%m%d}.zip", data=buffer.getvalue())

    @staticmethod
    def export_for_admin(admin: User, user_id) -> AccountExport:
        """An admin exports someone's data (to hand it to them); audited with the admin as actor."""
        return AccountDataManager.export(UserManager.get(user_id), actor=admin)

    @staticmethod
    def _export_prediction(archive: zipfile.ZipFile, storage: Storage, prediction: Prediction) -> dict[str, Any]:
        PredictionManager.render_pending_heatmap(prediction)
        files = {}
        for kind, folder, key in (
            ("image", "photos", prediction.image_key),
            ("heatmap", "heatmaps", prediction.heatmap_key),
            ("original", "originals", prediction.original_key),
        ):
            if not key:
                continue
            try:
                stored = storage.get_object(key)
            except ObjectNotFound:
                continue
            name = f"{folder}/{prediction.id}.{_EXTENSIONS.get(stored.content_type, 'bin')}"
            # Images are compressed already; deflating them again costs time for nothing.
            archive.writestr(zipfile.ZipInfo(name, date_time=prediction.created_at.timetuple()[:6]), stored.data)
            files[kind] = name
        # The same result for a hospital's systems: a FHIR R4 Bundle (managers.hospital_formats).
        name = f"fhir/{prediction.id}.json"
        bundle = HospitalFormats.fhir_bundle(prediction, MODEL_CARDS_PATH)
        archive.writestr(name, json.dumps(bundle, indent=2, ensure_ascii=False))
        files["fhir"] = name
        record = prediction.facts()
        card = AccountDataManager._card_figures(prediction.modality, prediction.model_version)
        return {
            **record,
            "id": str(prediction.id),
            "created_at": _iso(prediction.created_at),
            "model": {**record["model"], "card": card},
            "files": files,
        }

    @staticmethod
    def _card_figures(modality: str, version: str) -> dict[str, Any] | None:
        """The model card's figures for the model that made a prediction, if that version is still served."""
        for card in ModelManager.model_cards():
            if card.modality == modality and card.version == version:
                targets = card.targets.to_json() if card.targets else None
                return {"metrics": card.metrics, "targets": targets, "limitations": card.limitations}
        return None

    @staticmethod
    def delete_own(user: User, password: str) -> None:
        """The person deletes their own account, confirming with their password.

        The password is checked like a sign-in's (UserManager.confirm_password): wrong ones count
        towards the account's back-off and a waiting account is refused (429), so a session someone
        else took over can neither guess the password here nor delete the account while it waits.
        """
        email = user.email  # the row is gone after the deletion
        UserManager.confirm_password(user, password, field="password")
        AccountDataManager._delete(user, actor=None)
        # As after a successful sign-in; an account opened again under this email starts afresh.
        SignInBackoff.succeeded(email)

    @staticmethod
    def delete_by_admin(admin: User, user_id) -> None:
        """An admin deletes someone's account and everything in it (audited)."""
        user = UserManager.get(user_id)
        if user.id == admin.id:
            raise Conflict("Delete your own account from your account, not as an admin.", code="own_account")
        AccountDataManager._delete(user, actor=admin)

    @staticmethod
    def _delete(user: User, *, actor: User | None) -> None:
        storage = _storage()
        storage.check()  # an outage is a 503 while nothing has changed yet
        user_id = user.id
        was_active = UserManager.close_for_deletion(user, actor=actor)
        try:
            removed = AccountDataManager._delete_rows(user, actor=actor)
        except BaseException:
            if was_active:
                UserManager.reopen(user_id)  # so that the owner can try again
            raise
        _delete_objects(storage, removed.keys)
        _delete_objects(storage, removed.pending_heatmaps)  # drawn by a view in flight after the first pass
        _delete_objects(storage, removed.thumbnails)

    @staticmethod
    def _delete_rows(user: User, *, actor: User | None) -> _RemovedObjects:
        """Every row of the account, in one transaction holding the account's row; the stored objects they named."""
        with unit_of_work():
            UserManager.refuse_last_admin(
                user, "The last administrator's account cannot be deleted.", actor=actor, deleting=True
            )
            # The rows deleted, not a list read before: a record committed in between names its objects too.
            predictions = db.session.execute(
                delete(Prediction)
                .where(Prediction.owner_id == user.id)
                .returning(
                    Prediction.id,
                    Prediction.image_key,
                    Prediction.heatmap_key,
                    Prediction.original_key,
                    Prediction.activation_map.is_not(None).label("heatmap_pending"),
                )
                .execution_options(synchronize_session=False)
            ).all()
            jobs, chunk_keys = AccountDataManager._delete_jobs(user)
            spots = AccountDataManager._delete_spots(user)
            removed = _RemovedObjects(
                keys=[k for p in predictions for k in (p.image_key, p.heatmap_key, p.original_key) if k] + chunk_keys,
                pending_heatmaps=[p.heatmap_key for p in predictions if p.heatmap_key and p.heatmap_pending],
                thumbnails=[thumbnail_key(p.image_key) for p in predictions],
            )
            traces = {str(user.id), user.id.hex, user.email}
            traces |= {str(p.id) for p in predictions} | {str(job_id) for job_id in jobs}
            traces |= set(spots)
            tokens = list(db.session.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id)))
            traces |= {str(token_id) for token_id in tokens}
            AccountDataManager._forget_in_audit_trail(user, traces)
            db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
            db.session.execute(delete(RevokedToken).where(RevokedToken.user_id == user.id))
            db.session.delete(user)
            event = AuditManager.record(
                AuditAction.ACCOUNT_DELETE,
                actor=actor,
                target_type="user",
                details={
                    "by": "admin" if actor is not None else "self",
                    "predictions": len(predictions),
                    "spots": len(spots),
                    "stored_objects": len(removed.keys),
                    "tokens": len(tokens),
                },
            )
            if actor is None:
                event.ip = None  # the person's own address: personal data too
        return removed

    @staticmethod
    def _delete_jobs(user: User) -> tuple[list, list[str]]:
        """The account's jobs and their items (a worker on one of them finds it gone and stops); the jobs' ids and
        the chunks they still kept in storage."""
        jobs = list(db.session.scalars(select(Job.id).where(Job.owner_id == user.id)))
        if not jobs:
            return [], []
        chunk_keys = db.session.scalars(
            select(JobItem.chunk_key).where(JobItem.job_id.in_(jobs), JobItem.chunk_key.is_not(None)).distinct()
        ).all()
        db.session.execute(delete(JobItem).where(JobItem.job_id.in_(jobs)).execution_options(synchronize_session=False))
        db.session.execute(delete(Job).where(Job.id.in_(jobs)).execution_options(synchronize_session=False))
        return jobs, list(chunk_keys)

    @staticmethod
    def _delete_spots(user: User) -> list[str]:
        """The account's spots (their rows would go with the account's anyway); the ids of all it ever had.

        A spot's name says where on the body a lesion is, so the names its events kept (a rename, a deletion)
        go too."""
        spots = db.session.scalars(
            delete(Spot).where(Spot.owner_id == user.id).returning(Spot.id).execution_options(synchronize_session=False)
        ).all()
        events = select(AuditEvent).where(AuditEvent.actor_id == user.id, AuditEvent.target_type == "spot")
        ids = {str(spot_id) for spot_id in spots}
        for event in db.session.scalars(events):
            if event.target_id is not None:
                ids.add(event.target_id)
            event.details = {key: REDACTED for key in event.details or {}}
        return sorted(ids)

    @staticmethod
    def _forget_in_audit_trail(user: User, traces: set[str]) -> None:
        """Events by or about the account keep what happened and when, not who, from where or on what.

        An admin's action on the account keeps its actor: the trail must still say who looked.
        """
        for condition, values in (
            (AuditEvent.actor_id == user.id, {"actor_id": None, "ip": None}),
            (AuditEvent.target_id.in_(traces), {"target_id": None}),
        ):
            db.session.execute(
                update(AuditEvent).where(condition).values(**values).execution_options(synchronize_session=False)
            )
        details_text = cast(AuditEvent.details, String)
        naming = select(AuditEvent).where(or_(*(details_text.contains(trace, autoescape=True) for trace in traces)))
        for event in db.session.scalars(naming):
            event.details = _redacted(event.details, traces)


def _redacted(value: Any, traces: Iterable[str]) -> Any:
    """value with every string that contains one of traces replaced by REDACTED, however deeply nested."""
    traces = tuple(traces)
    if isinstance(value, dict):
        return {key: _redacted(item, traces) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, traces) for item in value]
    if isinstance(value, str) and any(trace in value for trace in traces):
        return REDACTED
    return value
