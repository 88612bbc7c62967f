"""Batch jobs: the submission form, the job and its items as shown, and their list queries."""

from flask import url_for
from marshmallow import Schema, fields, post_load, pre_dump, validate

from constants import AUTO_MODALITY, JOB_NOTE_MAX_LENGTH, JobItemStatus, JobStatus
from schemas.fields import Text
from schemas.pagination import PageQuerySchema, PageSchema
from schemas.predictions import UPLOAD_MODALITY_CHOICE, UPLOAD_MODALITY_DOC, FileUpload, auto_to_none


class JobUploadSchema(Schema):
    file = fields.List(
        FileUpload(),
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": "One zip of images (JPEG, PNG, BMP, TIFF, WebP; DICOM for chest X-rays), or several "
            "images as repeated `file` parts"
        },
    )
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
        }


class JobItemListSchema(PageSchema):
    items = fields.List(fields.Nested(JobItemSchema), dump_only=True)
