"""The report of one result: what a patient takes to a doctor, as a one-page PDF (services.report_pdf lays it out).

Built for the owner (the API and the result page) or for whoever holds a share link, from the same row, the
model's card and its modality's spec; dates in the reader's time zone where one is named, else UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from cnn_model.modalities import get_spec
from constants import PREDICTION_DISCLAIMER, ReviewVerdict
from managers.models import ModelManager
from managers.predictions import PredictionManager
from managers.share_links import ShareLinkManager
from models import Prediction, PredictionReview, User, utcnow
from services.report_pdf import ReportContent, render_report

VERDICT_WORDS = {
    ReviewVerdict.AGREE.value: "agrees",
    ReviewVerdict.DISAGREE.value: "disagrees",
    ReviewVerdict.AMEND.value: "amends the finding",
}
LIMITATION_MAX_CHARS = 420
# The longest note and review the page prints in full; longer ones are cut (the result page has them whole), so
# that the report stays one page.
NOTE_MAX_CHARS = 300
REVIEW_MAX_CHARS = 360


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "..."


def _per_100(value: float | None) -> int | None:
    return None if value is None else round(value * 100)


def local_time(moment: datetime, zone: ZoneInfo | None) -> str:
    """A time as a reader reads it: in their zone, named, or in UTC, labelled so."""
    if zone is None:
        return f"{moment:%d %B %Y, %H:%M} UTC"
    return f"{moment.astimezone(zone):%d %B %Y, %H:%M} ({zone.key})"


def finding_words(modality: str, finding: str | None) -> str | None:
    """A review's finding in plain words: a class's display name, or the clinician's own text."""
    if finding is None:
        return None
    spec = get_spec(modality)
    return spec.class_spec(finding).display_name if finding in spec.class_names else finding


def review_sentence(review: PredictionReview, zone: ZoneInfo | None = None) -> str:
    """ "Reviewed by a clinician on <date>: agrees - <finding>, <comment>"."""
    moment = review.created_at.astimezone(zone) if zone else review.created_at
    day = f"{moment.day} {moment:%B %Y}"
    parts = [part for part in (finding_words(review.modality, review.finding), review.comment) if part]
    said = f" \u2014 {', '.join(parts)}" if parts else ""
    return f"Reviewed by a clinician on {day}: {VERDICT_WORDS[review.verdict]}{said}"


def _held_out(prediction: Prediction) -> str | None:
    card = next((c for c in ModelManager.model_cards() if c.modality == prediction.modality), None)
    metrics = (card.metrics or {}) if card else {}
    figures, name = metrics.get("test_slice"), "test"
    if not figures:
        figures, name = metrics.get("val"), "validation"
    if not figures:
        return None
    positive_word = "malignant" if get_spec(prediction.modality).positive_flag == "is_malignant" else "abnormal"
    text = f"On {figures.get('n', 0)} held-out {name} images it never trained on (version {card.version}): correct on "
    text += f"{_per_100(figures.get('accuracy'))} of 100"
    binary = figures.get("binary") or {}
    if binary.get("sensitivity") is not None:
        text += (
            f"; flagged {_per_100(binary['sensitivity'])} of 100 {positive_word} ones and left "
            f"{_per_100(binary.get('specificity'))} of 100 others unflagged"
        )
    return text + "."


def _card_text(prediction: Prediction) -> tuple[str, str | None]:
    card = next((c for c in ModelManager.model_cards() if c.modality == prediction.modality), None)
    if card is None:
        return "Research and education; not a diagnosis.", None
    limitation = (card.limitations or "").strip() or None
    return card.intended_use, _clip(limitation, LIMITATION_MAX_CHARS)


def report_content(prediction: Prediction, zone: ZoneInfo | None) -> ReportContent:
    """What the report of a prediction says, worked out from the row, its spec and its model's card."""
    spec = get_spec(prediction.modality)
    finding = spec.class_spec(prediction.label)
    positive_word = "malignant" if spec.positive_flag == "is_malignant" else "abnormal"
    storage = current_app.extensions["storage"]
    PredictionManager.render_pending_heatmap(prediction)
    image = storage.get_object(prediction.image_key).data
    heatmap = storage.get_object(prediction.heatmap_key).data if prediction.heatmap_key else None
    prediction_set = None
    if prediction.prediction_set:
        names = [spec.class_spec(name).display_name for name in prediction.prediction_set]
        coverage = round((prediction.set_coverage or 0) * 100)
        prediction_set = (
            f"The model could not rule out: {', '.join(names)} (a set that holds the true finding for "
            f"{coverage} of 100 images); it is {prediction.certainty or 'clear'} about this image."
        )
    rows = sorted(spec.classes, key=lambda c: -prediction.probabilities.get(c.name, 0.0))
    intended_use, limitation = _card_text(prediction)
    review = prediction.review
    return ReportContent(
        title=f"MedSight result: {spec.display_name}",
        made_at=local_time(prediction.created_at, zone),
        printed_at=local_time(utcnow(), zone),
        image=image,
        heatmap=heatmap,
        finding=finding.display_name,
        finding_description=f"{finding.description} The model gives it {round(prediction.confidence * 100)}%.",
        prediction_set=prediction_set,
        flag=f"Flagged as possibly {positive_word}." if prediction.is_positive else f"Not flagged as {positive_word}.",
        advice=spec.advice.flagged if prediction.is_positive else spec.advice.not_flagged,
        probabilities=[
            (
                c.display_name + (f" ({positive_word})" if c.is_positive else ""),
                f"{prediction.probabilities.get(c.name, 0.0) * 100:.1f}%",
            )
            for c in rows
        ],
        model=f"{prediction.model_name}, version {prediction.model_version}",
        held_out=_held_out(prediction),
        intended_use=intended_use,
        limitation=limitation,
        review=_clip(review_sentence(review, zone), REVIEW_MAX_CHARS) if review else None,
        note=_clip(prediction.note, NOTE_MAX_CHARS),
        disclaimer=PREDICTION_DISCLAIMER,
    )


class ReportManager:
    @staticmethod
    def for_owner(owner: User, prediction_id: uuid.UUID, zone: ZoneInfo | None = None) -> bytes:
        """The PDF report of one of owner's results."""
        return render_report(report_content(PredictionManager.get_for(owner, prediction_id), zone))

    @staticmethod
    def for_link(token: str, zone: ZoneInfo | None = None) -> bytes:
        """The PDF report of the result a share link opens (the open audited, as any)."""
        return render_report(report_content(ShareLinkManager.open(token, "report"), zone))
