"""A prediction for a hospital's systems: its DICOM SR, the image the SR is about, the model's attention on
that image as a DICOM Parametric Map, and its FHIR Bundle.

The same reading rules as the photo and heatmap: the owner's own (someone else's is NotFound), or an
admin's read of anyone's, audited. The report is filled once from the prediction and its modality's
spec (classes and their SNOMED CT codes), and each form is built from it by services.interop.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Literal

import numpy as np
from flask import current_app
from PIL import Image

from cnn_model.modalities import get_spec
from cnn_model.runtime import ActivationMap
from managers.predictions import PredictionManager
from models import Prediction, User
from services.interop import dicom_sr, fhir
from services.interop.report import (
    LOCAL_SCHEME,
    ClassProbability,
    Concept,
    FindingReport,
    ModelIdentity,
    class_concept,
)
from services.storage import Storage
from utils.dicom import CONTENT_TYPE as DICOM_CONTENT_TYPE
from utils.errors import NotFound

FormatKind = Literal["dicom-sr", "dicom-source", "dicom-heatmap", "fhir"]
# Where the model cards are, for a Bundle made outside a request (the account export): the API's own path.
MODEL_CARDS_PATH = "/api/v1/models"
PROBABILITY_DIGITS = 6  # as the SR and the Bundle both give them
_FLAG_MEANINGS = {"is_malignant": "Flagged as malignant", "is_abnormal": "Flagged as abnormal"}


@dataclass(frozen=True)
class ClinicalDocument:
    data: bytes | dict
    content_type: str
    filename: str


def _storage() -> Storage:
    return current_app.extensions["storage"]


def finding_report(prediction: Prediction, card_url: str) -> FindingReport:
    """What the prediction says, coded: the one input of its SR and its FHIR Bundle."""
    spec = get_spec(prediction.modality)

    def coded(name: str) -> ClassProbability:
        c = spec.class_spec(name)
        probability = round(float(prediction.probabilities.get(name, 0.0)), PROBABILITY_DIGITS)
        return ClassProbability(name, class_concept(spec.name, name, c.display_name, c.snomed_ct), probability)

    classes = tuple(coded(name) for name in spec.class_names)
    flag = spec.positive_flag
    review = prediction.review
    return FindingReport(
        prediction_id=prediction.id,
        created_at=prediction.created_at,
        subject_id=prediction.owner_id,
        modality=spec.name,
        modality_display=spec.display_name,
        finding=coded(prediction.label),
        classes=classes,
        flag=Concept(f"{spec.name}.{flag}", LOCAL_SCHEME, _FLAG_MEANINGS.get(flag, flag)),
        flagged=prediction.is_positive,
        prediction_set=tuple(coded(name) for name in prediction.prediction_set) if prediction.prediction_set else None,
        set_coverage=prediction.set_coverage,
        certainty=prediction.certainty,
        model=ModelIdentity(prediction.model_name, prediction.model_version, prediction.model_sha256, card_url),
        review_verdict=review.verdict if review is not None else None,
        review_finding=_reviewed_finding(spec, review.finding or prediction.label) if review is not None else None,
    )


def _reviewed_finding(spec, finding: str) -> str:
    """A clinician's finding in words: a class's display name, or the free text they wrote."""
    return spec.class_spec(finding).display_name if finding in spec.class_names else finding


def _source_image(prediction: Prediction, report: FindingReport):
    """The image the SR is about: the de-identified DICOM upload, or a Secondary Capture made from the photo."""
    from pydicom import dcmread

    storage = _storage()
    if prediction.original_key:
        return dcmread(io.BytesIO(storage.get_object(prediction.original_key).data))
    photo = Image.open(io.BytesIO(storage.get_object(prediction.image_key).data))
    photo = photo.convert("L" if photo.mode in ("L", "I", "I;16", "1") else "RGB")
    return dicom_sr.secondary_capture(report, np.asarray(photo))


def _require_activation_map(prediction: Prediction) -> None:
    """NotFound unless the row keeps the model's activation map. Rows from before it was kept once the heatmap
    was drawn have only the coloured PNG, which is no measurement; the map is not recomputed, as the model that
    made it may no longer be the one that runs."""
    if prediction.activation_map is not None:
        return
    if prediction.heatmap_key is None:
        raise NotFound("This prediction has no heatmap.")
    raise NotFound("This prediction's heatmap data is no longer kept: only its picture remains.")


class HospitalFormats:
    @staticmethod
    def for_owner(owner: User, prediction_id: uuid.UUID, kind: FormatKind, card_url: str) -> ClinicalDocument:
        """One of owner's predictions as kind; NotFound for someone else's."""
        return HospitalFormats._build(PredictionManager.get_for(owner, prediction_id), kind, card_url)

    @staticmethod
    def for_admin(admin: User, prediction_id: uuid.UUID, kind: FormatKind, card_url: str) -> ClinicalDocument:
        """Any user's prediction as kind, for an admin (audited like any read of someone else's record)."""
        return HospitalFormats._build(PredictionManager.get_any(admin, prediction_id, what=kind), kind, card_url)

    @staticmethod
    def fhir_bundle(prediction: Prediction, card_url: str) -> dict:
        """The prediction's FHIR Bundle, as JSON."""
        return fhir.bundle(finding_report(prediction, card_url))

    @staticmethod
    def _build(prediction: Prediction, kind: FormatKind, card_url: str) -> ClinicalDocument:
        if kind == "dicom-heatmap":
            _require_activation_map(prediction)
        report = finding_report(prediction, card_url)
        name = f"medsight-{prediction.id}"
        if kind == "fhir":
            return ClinicalDocument(fhir.bundle(report), fhir.FHIR_CONTENT_TYPE, f"{name}.fhir.json")
        source = _source_image(prediction, report)
        if kind == "dicom-source":
            return ClinicalDocument(dicom_sr.encoded(source), DICOM_CONTENT_TYPE, f"{name}-image.dcm")
        if kind == "dicom-heatmap":
            attention = ActivationMap.from_bytes(prediction.activation_map).on_grid(source.Columns, source.Rows)
            pmap = dicom_sr.parametric_map(report, source, attention)
            return ClinicalDocument(dicom_sr.encoded(pmap), DICOM_CONTENT_TYPE, f"{name}-heatmap.dcm")
        sr = dicom_sr.structured_report(report, source)
        return ClinicalDocument(dicom_sr.encoded(sr), DICOM_CONTENT_TYPE, f"{name}-sr.dcm")
