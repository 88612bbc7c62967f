"""Predictions: classify an upload and keep it, list a history, open the photo and heatmap, delete.

The flow of one prediction and its transaction rule live in create(): validate the bytes, run the
modality's model, store the photo, then write the row and its audit event in one unit of work.
Whatever fails, nothing half-done remains: the stored photo is deleted again if the row cannot be
written, and no row is written if storage fails. The heatmap is not drawn then: the row keeps the
model's activation map (a few hundred bytes at most) and the heatmap's storage key, and the first request
for the heatmap renders it into storage there (_render_heatmap). The map stays with the row after that:
it is the measurement the DICOM Parametric Map is made from, the PNG only a picture of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Literal

from flask import current_app
from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, select
from sqlalchemy.orm import joinedload

from cnn_model.gate import GateResult
from cnn_model.runtime import HEATMAP_MAX_SIDE, ActivationMap, ModelRunner
from cnn_model.runtime import Prediction as RunnerPrediction
from constants import (
    HEATMAP_CONTENT_TYPE,
    HEATMAP_KEY_PREFIX,
    IMAGE_URL_TTL_SECONDS,
    ORIGINAL_KEY_PREFIX,
    PHOTO_KEY_PREFIX,
    THUMBNAIL_CONTENT_TYPE,
    THUMBNAIL_KEY_PREFIX,
    THUMBNAIL_QUALITY,
    THUMBNAIL_SIDE,
    AuditAction,
)
from db import db
from managers.audit import AuditManager
from managers.models import ModalityChoice, ModelManager
from managers.ownership import get_owned
from managers.pagination import ListFilters, Page, list_page
from managers.spots import SpotChoice, SpotManager
from managers.transactions import UnitOfWork, unit_of_work
from managers.upload_quota import UploadQuota
from models import Prediction, PredictionCount, User, utcnow
from services.storage import ObjectNotFound, ObjectStream, Storage
from utils.cursor import Cursor
from utils.errors import NotAMedicalImage, NotFound
from utils.images import ValidatedImage, thumbnail_jpeg, validate_image_upload

ImageKind = Literal["image", "heatmap"]
KEYSET = (Prediction.created_at, Prediction.id)  # a cursor's position in the history
NEWEST_FIRST = tuple(column.desc() for column in KEYSET)


@dataclass(frozen=True)
class PredictionFilters(ListFilters):
    """What a history list may be narrowed to; None means "any"."""

    modality: str | None = None
    label: str | None = None
    is_positive: bool | None = None
    certainty: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    owner_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.job_id is not None:
            conditions.append(Prediction.job_id == self.job_id)
        if self.owner_id is not None:
            conditions.append(Prediction.owner_id == self.owner_id)
        if self.modality is not None:
            conditions.append(Prediction.modality == self.modality)
        if self.label is not None:
            conditions.append(Prediction.label == self.label)
        if self.is_positive is not None:
            conditions.append(Prediction.is_positive == self.is_positive)
        if self.certainty is not None:
            conditions.append(Prediction.certainty == self.certainty)
        if self.created_after is not None:
            conditions.append(Prediction.created_at >= self.created_after)
        if self.created_before is not None:
            conditions.append(Prediction.created_at < self.created_before)
        return conditions


@dataclass(frozen=True)
class ImageDownload:
    """Where a client gets a stored image: a short-lived URL to fetch directly, or the bytes themselves."""

    url: str | None = None
    stream: ObjectStream | None = None


def thumbnail_key(image_key: str) -> str:
    """Where the thumbnail of the photo at image_key is kept: the photo's own key, under THUMBNAIL_KEY_PREFIX."""
    return f"{THUMBNAIL_KEY_PREFIX}/{image_key.split('/', 1)[-1]}"


def _storage() -> Storage:
    return current_app.extensions["storage"]


def _store(uow: UnitOfWork, storage: Storage, prefix: str, data: bytes, content_type: str) -> str:
    key = storage.new_key(prefix)
    # Registered before the put: a put that fails half-way leaves nothing behind either.
    uow.on_rollback(storage.delete_object, key)
    storage.put_object(key, data, content_type)
    return key


@contextmanager
def _loaded_after_commit() -> Iterator[None]:
    """Let the commit inside leave loaded rows as they are: the answer is built from the row just written and
    the request's log names its caller, and reading either back would cost a round trip each."""
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = expire_on_commit


def _stored_size(image: ValidatedImage) -> int:
    """What an upload takes in storage, for the quota: its photo and its DICOM original."""
    return len(image.data) + len(image.original or b"")


def _tally(filters: PredictionFilters) -> Select | None:
    """The total of an unfiltered history (one owner's, or everyone's) from the tallies the database keeps
    (models.PredictionCount); None when other filters apply and the matching rows must be counted."""
    if replace(filters, owner_id=None) != PredictionFilters():
        return None
    total = select(cast(func.coalesce(func.sum(PredictionCount.predictions), 0), BigInteger))  # sum() is numeric
    return total if filters.owner_id is None else total.where(PredictionCount.owner_id == filters.owner_id)


class PredictionManager:
    @staticmethod
    def create(
        owner: User,
        modality: str | None,
        upload: BinaryIO | bytes,
        note: str | None = None,
        spot: SpotChoice | None = None,
    ) -> Prediction:
        """Classify an uploaded image and keep it in owner's history, as a photo of spot if one is named.

        modality None: the modality gate says what kind of image it is. Named: the gate must agree.
        """
        image, choice = PredictionManager.read_upload(modality, upload)
        UploadQuota.precheck(owner, _stored_size(image))  # before the model and storage spend anything on it
        runner = ModelManager.runner(choice.modality)
        followed = SpotManager.choose(owner, spot or SpotChoice(), choice.modality)
        result = ModelManager.run(runner, image.image, heatmap=True)
        lesion = SpotManager.lesion_fields(followed, choice.modality, image.image)
        with _loaded_after_commit(), unit_of_work() as uow:
            prediction = PredictionManager.stored_prediction(
                uow,
                owner,
                image,
                choice,
                runner,
                result,
                note=(note or "").strip() or None,
                spot_id=followed.id if followed is not None else None,
                **lesion,
            )
            if followed is not None:
                prediction.spot_id = SpotManager.keep(owner, followed, spot.body_site).id
            db.session.add(prediction)
            AuditManager.record(
                AuditAction.PREDICTION_CREATE,
                actor=owner,
                target_type="prediction",
                target_id=prediction.id,
                details={"modality": result.modality, "label": result.label, "model_version": runner.version},
            )
        return prediction

    @staticmethod
    def classify(modality: str | None, upload: BinaryIO | bytes) -> tuple[RunnerPrediction, bool]:
        """Classify an upload without keeping anything (anonymous POST /predict): the result and whether
        the gate chose the modality."""
        image, choice = PredictionManager.read_upload(modality, upload, keep=False)
        return ModelManager.run(ModelManager.runner(choice.modality), image.image), choice.detected

    @staticmethod
    def stored_prediction(
        uow: UnitOfWork,
        owner: User,
        image: ValidatedImage,
        choice: ModalityChoice,
        runner: ModelRunner,
        result: RunnerPrediction,
        *,
        note: str | None,
        admit: bool = True,
        **links: Any,
    ) -> Prediction:
        """The record of a classified upload, its photo (and DICOM original) stored in uow; links: a batch job's
        job_id and job_entry_sha256, or a spot's spot_id and lesion fields. Holds owner's row until uow commits
        (UploadQuota.admit); admit=False leaves that to the caller, who admits several records at once."""
        storage = _storage()
        stored_bytes = _stored_size(image)
        image_key = _store(uow, storage, PHOTO_KEY_PREFIX, image.data, image.content_type)
        original_key = (
            _store(uow, storage, ORIGINAL_KEY_PREFIX, image.original, image.original_content_type)
            if image.original is not None
            else None
        )
        # After the slow puts, so that the account's row is held only while the record is written; refused,
        # the unit of work removes what was stored.
        if admit:
            UploadQuota.admit(owner, stored_bytes)
        activation_map = result.activation_map
        return Prediction(
            id=uuid.uuid4(),
            owner_id=owner.id,
            modality=result.modality,
            modality_detected=choice.detected,
            label=result.label,
            confidence=min(max(result.confidence, 0.0), 1.0),
            probabilities=result.probabilities,
            is_positive=result.is_positive,
            prediction_set=list(result.prediction_set) if result.prediction_set is not None else None,
            set_coverage=result.set_coverage,
            certainty=result.certainty,
            model_name=runner.name,
            model_version=runner.version,
            model_sha256=runner.sha256,
            image_key=image_key,
            image_content_type=image.content_type,
            image_sha256=image.sha256,
            image_width=image.width,
            image_height=image.height,
            original_key=original_key,
            stored_bytes=stored_bytes,
            # Reserved now, rendered on first view (_render_heatmap).
            heatmap_key=storage.new_key(HEATMAP_KEY_PREFIX) if activation_map is not None else None,
            activation_map=activation_map.to_bytes() if activation_map is not None else None,
            note=note,
            reviews=[],  # a new record has none: answering it need not ask the database
            **links,
        )

    @staticmethod
    def read_upload(
        modality: str | None, upload: BinaryIO | bytes, *, keep: bool = True
    ) -> tuple[ValidatedImage, ModalityChoice]:
        """The validated, decoded upload and the modality it is to be read as (checked by the gate); keep: make
        the photo to store too."""
        image = PredictionManager.decode_upload(modality, upload, keep=keep)
        return image, PredictionManager.choose_for(modality, image)

    @staticmethod
    def decode_upload(modality: str | None, upload: BinaryIO | bytes, *, keep: bool = True) -> ValidatedImage:
        """read_upload's first half: the validated, decoded upload, before the gate has seen it."""
        config = current_app.config
        return validate_image_upload(
            upload,
            max_bytes=config["MAX_UPLOAD_BYTES"],
            max_pixels=config["MAX_IMAGE_PIXELS"],
            max_full_decode_pixels=config["MAX_FULL_DECODE_PIXELS"],
            # The models read a few hundred pixels a side: a large JPEG is decoded at a fraction of its size.
            decode_size=ModelManager.input_size(modality),
            keep=keep,
        )

    @staticmethod
    def choose_for(modality: str | None, image: ValidatedImage, detected: GateResult | None = None) -> ModalityChoice:
        """read_upload's second half: the modality a decoded upload is read as, once the gate (or its answer
        detected, asked for several uploads at once) and the capture check let it through."""
        short_side = min(image.width, image.height)
        try:
            choice = ModelManager.choose_modality(modality, image.image, detected)
        except NotAMedicalImage as refusal:
            # The gate may not know a dark or blurred photo of the named kind: say what to fix as well.
            reason = ModelManager.capture_problem(modality, image.image, short_side) if modality else None
            if reason is None:
                raise
            raise NotAMedicalImage(
                f"{refusal.message} {ModelManager.retake_advice(modality, reason)}",
                details={**refusal.details, "quality": reason},
            ) from None
        # After the gate: a picture of another kind is told so, not judged by this kind's limits.
        ModelManager.check_capture(choice.modality, image.image, short_side)
        return choice

    @staticmethod
    def list_for(
        owner: User,
        filters: PredictionFilters,
        page: int,
        per_page: int,
        after: Cursor | None = None,
        before: Cursor | None = None,
    ) -> Page:
        """owner's history, newest first, one page of it (by number, or after/before a cursor) and how many match."""
        filters = replace(filters, owner_id=owner.id)
        newest_first = select(Prediction).order_by(*NEWEST_FIRST)
        result = list_page(
            newest_first,
            filters.conditions(),
            page,
            per_page,
            count=_tally(filters),
            keyset=KEYSET,
            after=after,
            before=before,
        )
        return result

    @staticmethod
    def get_for(owner: User, prediction_id: uuid.UUID) -> Prediction:
        """One of owner's predictions; NotFound for an unknown id and for someone else's alike."""
        return get_owned(Prediction.owner_id, prediction_id, owner, noun="prediction")

    @staticmethod
    def open_image(owner: User, prediction_id: uuid.UUID, kind: ImageKind, *, link: bool = True) -> ImageDownload:
        """The photo or heatmap of one of owner's predictions; link=False: its bytes even where storage offers a URL."""
        return PredictionManager._download(PredictionManager.get_for(owner, prediction_id), kind, link)

    @staticmethod
    def open_thumbnail(owner: User, prediction_id: uuid.UUID) -> ObjectStream:
        """The small square of one of owner's photos that the history lists, drawn and kept on its first view.

        Two first views at once draw the same bytes to the same key; a prediction deleted meanwhile may leave its
        thumbnail behind, which the storage sweep removes with its photo gone.
        """
        prediction = PredictionManager.get_for(owner, prediction_id)
        storage = _storage()
        key = thumbnail_key(prediction.image_key)
        try:
            return replace(storage.open_object(key), content_type=THUMBNAIL_CONTENT_TYPE)
        except ObjectNotFound:
            pass
        stored = storage.get_object(prediction.image_key).data
        photo = validate_image_upload(
            stored,
            max_bytes=len(stored),
            max_pixels=prediction.image_width * prediction.image_height,
            decode_size=THUMBNAIL_SIDE,
            keep=False,
        )
        data = thumbnail_jpeg(photo.image, THUMBNAIL_SIDE, THUMBNAIL_QUALITY)
        storage.put_object(key, data, THUMBNAIL_CONTENT_TYPE)
        return ObjectStream(iter((data,)), THUMBNAIL_CONTENT_TYPE, len(data))

    @staticmethod
    def delete(owner: User, prediction_id: uuid.UUID) -> None:
        """Remove one of owner's predictions: its stored photo and heatmap, then the row (audited).

        Objects go first: if storage is down the client gets a 503 and the record stays whole; if
        the commit then fails, a retry finishes the job (deleting a missing object is no error).
        The other order could leave a deleted medical photo behind in the bucket, unreachable.
        """
        prediction = PredictionManager.get_for(owner, prediction_id)
        storage = _storage()
        with unit_of_work():
            thumbnail = thumbnail_key(prediction.image_key)
            for key in (prediction.image_key, prediction.heatmap_key, prediction.original_key, thumbnail):
                if key:
                    storage.delete_object(key)
            db.session.delete(prediction)
            AuditManager.record(
                AuditAction.PREDICTION_DELETE,
                actor=owner,
                target_type="prediction",
                target_id=prediction.id,
                details={"owner_id": str(prediction.owner_id), "modality": prediction.modality},
            )

    # -- admin: everyone's records, every read of someone else's audited ------------------------

    @staticmethod
    def list_all(
        admin: User,
        filters: PredictionFilters,
        page: int,
        per_page: int,
        after: Cursor | None = None,
        before: Cursor | None = None,
    ) -> Page:
        """Every user's predictions (filters may name one owner), newest first, owners loaded in the same query."""
        newest_first = select(Prediction).options(joinedload(Prediction.owner)).order_by(*NEWEST_FIRST)

        def audit(result: Page) -> None:
            AuditManager.record(
                AuditAction.ADMIN_LIST_PREDICTIONS,
                actor=admin,
                target_type="prediction",
                details={
                    "filters": filters.described(),
                    "page": result.page,
                    "per_page": per_page,
                    "prediction_ids": [str(p.id) for p in result.items if p.owner_id != admin.id],
                },
            )

        result = list_page(
            newest_first,
            filters.conditions(),
            page,
            per_page,
            audit=audit,
            count=_tally(filters),
            keyset=KEYSET,
            after=after,
            before=before,
        )
        return result

    @staticmethod
    def get_any(
        admin: User, prediction_id: uuid.UUID, *, what: str = "record", read_within: timedelta | None = None
    ) -> Prediction:
        """Any user's prediction, for an admin; reading someone else's leaves an audit event.

        read_within: no new event where this admin's read of the record is in the trail from that long ago (the
        photo and heatmap of a record page just opened are part of that one read).
        """
        prediction = db.session.scalar(
            select(Prediction).options(joinedload(Prediction.owner)).where(Prediction.id == prediction_id)
        )
        if prediction is None:
            raise NotFound("No such prediction.")
        already_read = read_within is not None and AuditManager.recorded_since(
            AuditAction.PREDICTION_READ, actor=admin, target_id=prediction.id, since=utcnow() - read_within
        )
        if prediction.owner_id != admin.id and not already_read:
            with unit_of_work():
                AuditManager.record(
                    AuditAction.PREDICTION_READ,
                    actor=admin,
                    target_type="prediction",
                    target_id=prediction.id,
                    details={"owner_id": str(prediction.owner_id), "what": what},
                )
        return prediction

    @staticmethod
    def open_any_image(
        admin: User,
        prediction_id: uuid.UUID,
        kind: ImageKind,
        *,
        link: bool = True,
        read_within: timedelta | None = None,
    ) -> ImageDownload:
        """Any user's photo or heatmap, for an admin (audited as get_any); link as in open_image."""
        prediction = PredictionManager.get_any(admin, prediction_id, what=kind, read_within=read_within)
        return PredictionManager._download(prediction, kind, link)

    @staticmethod
    def download(prediction: Prediction, kind: ImageKind, *, link: bool = True) -> ImageDownload:
        """The photo or heatmap of a prediction its caller already may see (a shared one, a linked one)."""
        return PredictionManager._download(prediction, kind, link)

    @staticmethod
    def _download(prediction: Prediction, kind: ImageKind, link: bool) -> ImageDownload:
        key = prediction.image_key if kind == "image" else prediction.heatmap_key
        if not key:
            raise NotFound(f"This prediction has no {kind}.")
        storage = _storage()
        if kind == "heatmap":
            PredictionManager.render_pending_heatmap(prediction)
        url = storage.url_for(key, expires_in=IMAGE_URL_TTL_SECONDS) if link else None
        if url is not None:
            return ImageDownload(url=url)
        # The type recorded with the prediction, whatever the storage's metadata says.
        content_type = prediction.image_content_type if kind == "image" else HEATMAP_CONTENT_TYPE
        return ImageDownload(stream=replace(storage.open_object(key), content_type=content_type))

    @staticmethod
    def render_pending_heatmap(prediction: Prediction) -> None:
        """Draw the prediction's heatmap into storage now if it is still pending, for a reader of stored objects.

        Pending: the row keeps its activation map and storage has no PNG under its heatmap key yet. A row
        without the map had its heatmap stored at upload or drawn before the map was kept.
        """
        if not prediction.heatmap_key or prediction.activation_map is None:
            return
        try:
            _storage().get_object(prediction.heatmap_key)
        except ObjectNotFound:
            PredictionManager._render_heatmap(prediction)

    @staticmethod
    def _render_heatmap(prediction: Prediction) -> None:
        """Draw a prediction's heatmap from its activation map over its photo, into storage at its heatmap_key.

        The row keeps its map afterwards (a few hundred bytes at most): the DICOM Parametric Map is made from
        it. Two first views at once write the same bytes to the same key. A prediction deleted meanwhile leaves
        no heatmap behind: when its row is gone after the write, the PNG goes again.
        """
        storage = _storage()
        prediction_id, image_key, heatmap_key = prediction.id, prediction.image_key, prediction.heatmap_key
        stored = storage.get_object(image_key).data
        # Checked as it was when uploaded, whatever the limits are now; decoded no larger than the heatmap.
        photo = validate_image_upload(
            stored,
            max_bytes=len(stored),
            max_pixels=prediction.image_width * prediction.image_height,
            decode_size=HEATMAP_MAX_SIDE,
            keep=False,  # stored as it was made to be kept
        )
        png = ActivationMap.from_bytes(prediction.activation_map).render(photo.image)
        storage.put_object(heatmap_key, png, HEATMAP_CONTENT_TYPE)
        if db.session.execute(select(Prediction.id).where(Prediction.id == prediction_id)).first() is None:
            storage.delete_object(heatmap_key)
