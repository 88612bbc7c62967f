"""Batch jobs: the submission form, the job and its items as shown, and their list queries."""

from flask import url_for
from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, pre_load, validate

from constants import AUTO_MODALITY, JOB_NOTE_MAX_LENGTH, JobItemStatus, JobSource, JobStatus, ReportDelivery
from schemas.fields import Text
from schemas.pagination import PageQuerySchema, PageSchema
from schemas.predictions import UPLOAD_MODALITY_CHOICE, UPLOAD_MODALITY_DOC, FileUpload, auto_to_none

# A DICOM UID (PS3.5 9.1): digits and dots, at most 64 characters.
DICOM_UID = validate.Regexp(r"[0-9]+(\.[0-9]+)*", error="Not a DICOM UID.")
MAX_STUDIES = 100
STUDY_DOC = {
    "description": "Instead of files: the StudyInstanceUID of a study in the configured PACS (DICOMWEB_URL), or "
    f"several (repeated, or a JSON list; at most {MAX_STUDIES}): its chest X-ray instances (CR, DX) are fetched "
    "and scored as chest X-rays, and each result's DICOM SR is stored back into the study"
}


def study_uids_field() -> fields.List:
    return fields.List(
        Text(validate=[validate.Length(max=64), DICOM_UID]),
        load_default=list,
        validate=validate.Length(max=MAX_STUDIES),
        metadata=STUDY_DOC,
    )


class JobUploadSchema(Schema):
    file = fields.List(
        FileUpload(),
        load_default=list,
        metadata={
            "description": "One zip of images (JPEG, PNG, BMP, TIFF, WebP; DICOM for chest X-rays), or several "
            "images as repeated `file` parts"
        },
    )
    study_instance_uid = study_uids_field()
    modality = Text(load_default=AUTO_MODALITY, validate=UPLOAD_MODALITY_CHOICE, metadata=UPLOAD_MODALITY_DOC)
    note = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=JOB_NOTE_MAX_LENGTH),
        metadata={"description": f"Kept with every prediction of the job, at most {JOB_NOTE_MAX_LENGTH} characters"},
    )

    @post_load
    def _files(self, data, **_kwargs):
        data["modality"] = auto_to_none(data["modality"])
        data["files"] = [(part.filename, part.stream) for part in data.pop("file")]
        return data


class JobStudySchema(Schema):
    """POST /api/v1/jobs as JSON: studies from the PACS (a zip or images come as multipart/form-data)."""

    study_instance_uid = study_uids_field()
    note = Text(load_default=None, allow_none=True, validate=validate.Length(max=JOB_NOTE_MAX_LENGTH))

    @pre_load
    def _one_or_many(self, data, **_kwargs):
        if isinstance(data, dict) and isinstance(data.get("study_instance_uid"), str):
            data = {**data, "study_instance_uid": [data["study_instance_uid"]]}
        return data

    @post_load
    def _some(self, data, **_kwargs):
        if not data["study_instance_uid"]:
            raise ValidationError("Name at least one study.", "study_instance_uid")
        return data


class JobCancelQuerySchema(Schema):
    purge = fields.Boolean(
        load_default=False,
        metadata={"description": "Also delete the predictions the job made (else they stay in the history)"},
    )


class JobItemQuerySchema(PageQuerySchema):
    status = Text(validate=validate.OneOf([s.value for s in JobItemStatus]), metadata={"description": "Only these"})
    flagged = fields.Boolean(metadata={"description": "Only flagged (malignant/abnormal) results, or only the others"})


class AdminJobQuerySchema(PageQuerySchema):
    user_id = fields.UUID(metadata={"description": "Only this user's jobs"})


class JobLinksSchema(Schema):
    self = fields.String(dump_only=True)
    items = fields.String(dump_only=True)
    results_csv = fields.String(dump_only=True)
    results_jsonl = fields.String(dump_only=True)
    predictions = fields.String(dump_only=True, metadata={"description": "The job's predictions in the history"})


class JobSchema(Schema):
    """A job as its owner sees it. Dumps a models.Job row carrying its counts (managers.jobs.with_counts)."""

    id = fields.UUID(dump_only=True)
    status = fields.String(dump_only=True, validate=validate.OneOf([s.value for s in JobStatus]))
    modality = fields.String(dump_only=True, metadata={"description": "A modality, or auto (the gate decides)"})
    source = fields.String(
        dump_only=True,
        validate=validate.OneOf([s.value for s in JobSource]),
        metadata={"description": "upload (files sent with the job) or pacs (studies fetched from the PACS)"},
    )
    note = fields.String(dump_only=True, allow_none=True)
    total = fields.Integer(dump_only=True, metadata={"description": "Items: one per file of the archive"})
    scored = fields.Integer(dump_only=True)
    failed = fields.Integer(dump_only=True, metadata={"description": "Items refused; each says why (its error)"})
    flagged = fields.Integer(dump_only=True, metadata={"description": "Scored items flagged malignant/abnormal"})
    created_at = fields.DateTime(dump_only=True)
    finished_at = fields.DateTime(dump_only=True, allow_none=True)
    links = fields.Nested(JobLinksSchema, dump_only=True)

    @pre_dump
    def _from_row(self, job, **_kwargs):
        counts = job.counts
        return {
            "id": job.id,
            "status": job.status,
            "modality": job.modality or AUTO_MODALITY,
            "source": job.source or JobSource.UPLOAD.value,
            "note": job.note,
            "total": counts.total,
            "scored": counts.scored,
            "failed": counts.failed,
            "flagged": counts.flagged,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "links": self._links(job),
            **self._extra(job),
        }

    def _links(self, job) -> dict:
        return {
            "self": url_for("jobs.Job", job_id=job.id),
            "items": url_for("jobs.JobItems", job_id=job.id),
            "results_csv": url_for("jobs.JobResults", job_id=job.id, extension="csv"),
            "results_jsonl": url_for("jobs.JobResults", job_id=job.id, extension="jsonl"),
            "predictions": url_for("predictions.Predictions", job_id=job.id),
        }

    def _extra(self, job) -> dict:
        return {}


class JobListSchema(PageSchema):
    items = fields.List(fields.Nested(JobSchema), dump_only=True)


class AdminJobSchema(JobSchema):
    """A job as an admin sees it: with its owner; the items and results stay its owner's."""

    owner_id = fields.UUID(dump_only=True)

    def _links(self, job) -> dict:
        return {"self": url_for("admin_jobs.AdminJob", job_id=job.id)}

    def _extra(self, job) -> dict:
        return {"owner_id": job.owner_id}


class AdminJobListSchema(PageSchema):
    items = fields.List(fields.Nested(AdminJobSchema), dump_only=True)


class JobItemPacsSchema(Schema):
    """A PACS job's item: the study it came from, and its DICOM SR's way back into that study."""

    study_instance_uid = fields.String(dump_only=True)
    report_status = fields.String(
        dump_only=True,
        allow_none=True,
        validate=validate.OneOf([s.value for s in ReportDelivery]),
        metadata={
            "description": "pending (not sent yet), sent (stored in the study by STOW-RS) or failed (refused or "
            "unreachable last time; sent again later, until the PACS takes it); none for an item not scored"
        },
    )
    report_attempts = fields.Integer(dump_only=True)
    report_error = fields.String(dump_only=True, allow_none=True, metadata={"description": "The last try's code"})
    report_sent_at = fields.DateTime(dump_only=True, allow_none=True)


class JobItemSchema(Schema):
    """One archive entry: its name and sha256, and the prediction it made or the error that stopped it."""

    position = fields.Integer(dump_only=True, metadata={"description": "0-based, in archive order"})
    name = fields.String(dump_only=True)
    sha256 = fields.String(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True, validate=validate.OneOf([s.value for s in JobItemStatus]))
    error = fields.String(dump_only=True, allow_none=True, metadata={"description": "An API error code"})
    prediction_id = fields.UUID(dump_only=True, allow_none=True)
    modality = fields.String(dump_only=True, allow_none=True)
    label = fields.String(dump_only=True, allow_none=True)
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), dump_only=True, allow_none=True)
    flagged = fields.Boolean(dump_only=True, allow_none=True)
    prediction_url = fields.String(dump_only=True, allow_none=True)
    pacs = fields.Nested(JobItemPacsSchema, dump_only=True, allow_none=True, metadata={"description": "PACS jobs"})

    @pre_dump
    def _from_row(self, item, **_kwargs):
        prediction = item.prediction
        return {
            "position": item.position,
            "name": item.name,
            "sha256": item.sha256,
            "status": item.status,
            "error": item.error,
            "prediction_id": prediction.id if prediction is not None else None,
            "modality": prediction.modality if prediction is not None else None,
            "label": prediction.label if prediction is not None else None,
            "probabilities": prediction.probabilities if prediction is not None else None,
            "flagged": prediction.is_positive if prediction is not None else None,
            "prediction_url": url_for("predictions.Prediction", prediction_id=prediction.id) if prediction else None,
            "pacs": _pacs(item),
        }


class JobItemListSchema(PageSchema):
    items = fields.List(fields.Nested(JobItemSchema), dump_only=True)


def _pacs(item) -> dict | None:
    if item.pacs_study_uid is None:
        return None
    return {
        "study_instance_uid": item.pacs_study_uid,
        "report_status": item.report_status,
        "report_attempts": item.report_attempts,
        "report_error": item.report_error,
        "report_sent_at": item.report_sent_at,
    }
