"""Spots: one lesion (or body part) an account follows over time, its photos in time order.

An upload names a spot by name (the account's spot of that name, made on first use) or by id. A new
spot is written in the unit of work that records its first photo, so an upload refused or failed on the
way leaves no empty spot behind. A spot
follows one kind of image: a photo of another kind is refused for it. For skin photos, each photo's
lesion embedding is kept, and its distance to the nearest of the spot's earlier photos says whether it
may show another lesion (cnn_model.lesion_match). Deleting a spot leaves its photos in the history,
no longer linked to it: a result is the patient's record and outlives the folder it was filed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from PIL import Image
from sqlalchemy import func, inspect, select, update

from cnn_model.lesion_match import LesionMatcher, embedding_from_bytes, embedding_to_bytes
from cnn_model.modalities import get_spec
from constants import AuditAction
from db import db
from managers.audit import AuditManager
from managers.models import ModelManager
from managers.ownership import get_owned
from managers.transactions import unit_of_work
from models import Prediction, Spot, User
from models.spot import spot_name_key
from utils.errors import Conflict, ValidationFailed


@dataclass(frozen=True)
class SpotChoice:
    """The spot an upload names: by name (made if new) or by id; body_site sets where it is."""

    name: str | None = None
    spot_id: uuid.UUID | None = None
    body_site: str | None = None

    def __bool__(self) -> bool:
        return self.name is not None or self.spot_id is not None


@dataclass(frozen=True)
class SpotSummary:
    """A spot as the list shows it: how many photos it has, and when the latest was taken."""

    spot: Spot
    count: int
    latest_at: datetime | None

    def __getattr__(self, name: str):
        return getattr(self.spot, name)


@dataclass(frozen=True)
class SpotTimeline:
    """A spot and its photos, oldest first."""

    spot: Spot
    predictions: list[Prediction]

    @property
    def count(self) -> int:
        return len(self.predictions)

    def changes(self) -> list[tuple[str, ...]]:
        """Per photo, what changed since the one before: "finding", "set" (the findings not ruled out), "flag"."""
        changed: list[tuple[str, ...]] = []
        for before, after in zip([None, *self.predictions], self.predictions, strict=False):
            if before is None:
                changed.append(())
                continue
            changed.append(
                tuple(
                    name
                    for name, differs in (
                        ("finding", before.label != after.label),
                        ("set", set(before.prediction_set or ()) != set(after.prediction_set or ())),
                        ("flag", before.is_positive != after.is_positive),
                    )
                    if differs
                )
            )
        return changed

    def __getattr__(self, name: str):
        return getattr(self.spot, name)


class SpotManager:
    @staticmethod
    def choose(owner: User, choice: SpotChoice, modality: str) -> Spot | None:
        """The spot an upload of this modality goes to; one named for the first time is new and not yet written
        (SpotManager.keep writes it with the photo)."""
        if not choice:
            return None
        if choice.spot_id is not None:
            spot = SpotManager.get_for(owner, choice.spot_id)
        else:
            spot = SpotManager._by_name(owner, choice.name) or SpotManager._new(owner, choice, modality)
        if spot.modality != modality:
            raise ValidationFailed(
                f"The spot “{spot.name}” follows {get_spec(spot.modality).display_name} images; this image is "
                f"{get_spec(modality).display_name}. Name another spot for it.",
                code="spot_modality_mismatch",
                details={"spot": [f"This spot follows {spot.modality} images."]},
            )
        return spot

    @staticmethod
    def keep(owner: User, spot: Spot, body_site: str | None) -> Spot:
        """The spot a photo is recorded in, written in the photo's unit of work once owner's row is held
        (UploadQuota.admit): a new one is added there, so it is kept only if the photo is. Another upload of
        owner's that made a spot of the same name meanwhile has committed by then, and its spot is used."""
        if inspect(spot).transient:
            existing = SpotManager._by_name(owner, spot.name)
            if existing is None:
                db.session.add(spot)
                return spot
            spot = existing
        if body_site is not None and body_site != spot.body_site:
            spot.body_site = body_site
        return spot

    @staticmethod
    def _by_name(owner: User, name: str) -> Spot | None:
        return db.session.scalar(select(Spot).where(Spot.owner_id == owner.id, Spot.name_key == spot_name_key(name)))

    @staticmethod
    def _new(owner: User, choice: SpotChoice, modality: str) -> Spot:
        """A new spot of owner's, not yet in the session."""
        spot = Spot(id=uuid.uuid4(), owner_id=owner.id, body_site=choice.body_site, modality=modality)
        spot.rename(choice.name)
        return spot

    @staticmethod
    def lesion_fields(spot: Spot | None, modality: str, image: Image.Image) -> dict:
        """A spot's new photo's lesion embedding, and its distance to the nearest earlier one of the spot."""
        matcher: LesionMatcher | None = ModelManager.lesion_matcher(modality) if spot is not None else None
        if matcher is None:
            return {}
        embedding = matcher.embed_image(ModelManager.gate_network(), image)
        earlier = db.session.scalars(
            select(Prediction.lesion_embedding).where(
                Prediction.spot_id == spot.id, Prediction.lesion_embedding.is_not(None)
            )
        ).all()
        fields = {"lesion_embedding": embedding_to_bytes(embedding)}
        if earlier:
            distance = min(matcher.distance(embedding, embedding_from_bytes(data)) for data in earlier)
            fields.update(lesion_distance=distance, looks_like_other_lesion=matcher.looks_different(distance))
        return fields

    @staticmethod
    def list_for(owner: User) -> list[SpotSummary]:
        """owner's spots, the one with the latest photo first (spots without photos last), with their counts."""
        counts = (
            select(Prediction.spot_id, func.count().label("count"), func.max(Prediction.created_at).label("latest"))
            .where(Prediction.owner_id == owner.id, Prediction.spot_id.is_not(None))
            .group_by(Prediction.spot_id)
            .subquery()
        )
        rows = db.session.execute(
            select(Spot, counts.c.count, counts.c.latest)
            .outerjoin(counts, counts.c.spot_id == Spot.id)
            .where(Spot.owner_id == owner.id)
        ).all()
        summaries = [SpotSummary(spot, count or 0, latest) for spot, count, latest in rows]
        return sorted(
            summaries, key=lambda s: (s.latest_at is not None, s.latest_at or s.spot.created_at), reverse=True
        )

    @staticmethod
    def get_for(owner: User, spot_id: uuid.UUID) -> Spot:
        """One of owner's spots; NotFound for an unknown id and for someone else's alike."""
        return get_owned(Spot.owner_id, spot_id, owner, noun="spot")

    @staticmethod
    def timeline(owner: User, spot_id: uuid.UUID) -> SpotTimeline:
        """One of owner's spots with its photos, oldest first."""
        spot = SpotManager.get_for(owner, spot_id)
        predictions = db.session.scalars(
            select(Prediction)
            .where(Prediction.spot_id == spot.id, Prediction.owner_id == owner.id)
            .order_by(Prediction.created_at, Prediction.id)
        ).all()
        return SpotTimeline(spot, list(predictions))

    @staticmethod
    def change(owner: User, spot_id: uuid.UUID, name: str | None, body_site: str | None) -> Spot:
        """Rename one of owner's spots or say where it is; a name another of owner's spots has is a Conflict."""
        spot = SpotManager.get_for(owner, spot_id)
        old_name = spot.name
        if name is not None:
            other = SpotManager._by_name(owner, name)
            if other is not None and other.id != spot.id:
                raise Conflict(
                    f"You already have a spot called “{other.name}”.",
                    code="spot_name_taken",
                    details={"name": ["Another of your spots has this name."]},
                )
            spot.rename(name)
        if body_site is not None:
            spot.body_site = body_site
        with unit_of_work():
            AuditManager.record(
                AuditAction.SPOT_RENAME,
                actor=owner,
                target_type="spot",
                target_id=spot.id,
                details={"from": old_name, "to": spot.name, "body_site": spot.body_site},
            )
        return spot

    @staticmethod
    def delete(owner: User, spot_id: uuid.UUID) -> None:
        """Remove one of owner's spots; its photos stay in the history, no longer linked to it."""
        spot = SpotManager.get_for(owner, spot_id)
        with unit_of_work():
            db.session.execute(
                update(Prediction)
                .where(Prediction.spot_id == spot.id)
                .values(spot_id=None)
                .execution_options(synchronize_session=False)
            )
            db.session.delete(spot)
            AuditManager.record(
                AuditAction.SPOT_DELETE, actor=owner, target_type="spot", target_id=spot.id, details={"name": spot.name}
            )
