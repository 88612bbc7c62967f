"""A prediction for a hospital's systems: GET …/predictions/<id>/dicom-sr, …/dicom-source, …/dicom-heatmap
and …/fhir (the owner's), and the same under /api/v1/admin (anyone's, audited)."""

import uuid

from flask import Response, url_for
from flask.views import MethodView

from auth import auth_required, current_user
from constants import Role
from managers.hospital_formats import ClinicalDocument, FormatKind, HospitalFormats
from resources.api import Blueprint
from utils.responses import document_response

blp = Blueprint(
    "prediction_formats",
    __name__,
    url_prefix="/api/v1/predictions",
    description="A prediction as a DICOM Structured Report and as a FHIR R4 Bundle",
)
admin_blp = Blueprint(
    "admin_prediction_formats",
    __name__,
    url_prefix="/api/v1/admin/predictions",
    description="Any user's prediction as DICOM SR and FHIR (role admin; audited)",
)

KINDS = '<any("dicom-sr", "dicom-source", "dicom-heatmap", fhir):kind>'
FORMAT_DOC = (
    "kind dicom-sr: a Comprehensive 3D SR (TID 1500) with the finding, flag, probabilities and prediction set, "
    "application/dicom; kind dicom-source: the image that SR is about (the de-identified DICOM upload, or a "
    "Secondary Capture made from the photo), application/dicom; kind dicom-heatmap: the model's attention for "
    "the predicted class as a Parametric Map on that image's pixel grid, in its study, application/dicom; "
    "kind fhir: a FHIR R4 transaction Bundle "
    "(DiagnosticReport, Observation, Device, Provenance), application/fhir+json"
)


def _card_url() -> str:
    return url_for("models.Models", _external=True)


def send_document(document: ClinicalDocument) -> Response:
    return document_response(document.data, document.content_type, document.filename)


@blp.route(f"/<uuid:prediction_id>/{KINDS}")
class PredictionDocument(MethodView):
    @auth_required()
    @blp.response(200, content_type="application/octet-stream", description=FORMAT_DOC)
    @blp.alt_response(
        404,
        description="No such prediction among the caller's (someone else's is 404 too), or, for dicom-heatmap, "
        "none kept: a prediction without a heatmap, or one whose heatmap data is no longer kept",
    )
    def get(self, prediction_id: uuid.UUID, kind: FormatKind):
        """One of the caller's predictions as DICOM SR, its source image as DICOM, or a FHIR Bundle."""
        return send_document(HospitalFormats.for_owner(current_user(), prediction_id, kind, _card_url()))


@admin_blp.route(f"/<uuid:prediction_id>/{KINDS}")
class AdminPredictionDocument(MethodView):
    @auth_required(Role.ADMIN)
    @admin_blp.response(200, content_type="application/octet-stream", description=FORMAT_DOC)
    @admin_blp.alt_response(404, description="No such prediction")
    def get(self, prediction_id: uuid.UUID, kind: FormatKind):
        """Any user's prediction as DICOM SR, its source image as DICOM, or a FHIR Bundle (audited)."""
        return send_document(HospitalFormats.for_admin(current_user(), prediction_id, kind, _card_url()))
