"""/api/v1/jobs: batch jobs. Submit an archive of images, follow it, read its items and results, cancel it."""

import uuid

from flask import Response, current_app, request, stream_with_context, url_for
from flask.views import MethodView

from auth import auth_required, current_user
from managers.jobs import ItemFilters, JobManager
from managers.pacs import PacsJobs
from resources.api import Blueprint
from schemas.jobs import (
    JobCancelQuerySchema,
    JobItemListSchema,
    JobItemQuerySchema,
    JobListSchema,
    JobSchema,
    JobStudySchema,
    JobUploadSchema,
)
from schemas.pagination import PageQuerySchema
from utils.errors import ArchiveTooLarge, ValidationFailed
from utils.result_files import RESULT_COLUMNS, csv_lines, jsonl_lines

blp = Blueprint(
    "jobs",
    __name__,
    url_prefix="/api/v1/jobs",
    description="Batch jobs: many images at once, each kept as an ordinary prediction in your history",
)

_NOT_YOURS = "No such job among the caller's (someone else's is 404 too)"
# Multipart headers and form fields around the archive itself.
_FORM_OVERHEAD_BYTES = 64 * 1024
RESULT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
RESULTS_DOC = f"One line per archive entry, in archive order: {', '.join(RESULT_COLUMNS)} (CSV with a header row)"


@blp.before_request
def _allow_archive_sized_bodies() -> None:
    """A job's archive may be far larger than one image upload (JOB_MAX_ARCHIVE_MB, not MAX_UPLOAD_MB)."""
    if request.method != "POST":
        return
    limit = current_app.config["JOB_MAX_ARCHIVE_BYTES"]
    if request.content_length is not None and request.content_length > limit + _FORM_OVERHEAD_BYTES:
        raise ArchiveTooLarge(
            f"A job's archive may be at most {limit // (1024 * 1024)} MB.",
            details={"reason": "archive_size", "limit_bytes": limit},
        )
    request.max_content_length = limit + _FORM_OVERHEAD_BYTES


@blp.route("")
class Jobs(MethodView):
    @auth_required()
    @blp.arguments(JobUploadSchema, location="form_and_files")
    @blp.response(202, JobSchema, headers={"Location": {"description": "The job", "schema": {"type": "string"}}})
    @blp.alt_response(413, description="Archive over JOB_MAX_ARCHIVE_MB, or too many files (archive_too_large)")
    @blp.alt_response(409, description="study_instance_uid given, but no PACS is configured (pacs_not_configured)")
    @blp.alt_response(422, description="A study with no chest X-ray instance in the PACS (study_not_found)")
    @blp.alt_response(429, description="JOB_MAX_ACTIVE_PER_ACCOUNT jobs already queued or running (too_many_jobs)")
    @blp.alt_response(503, description="Storage, database, job queue or PACS unavailable")
    def post(self, form):
        """Submit a zip of images (or several images) to be scored, or studies from the PACS by StudyInstanceUID.

        Studies may also come as JSON: `{"study_instance_uid": "1.2.…" or ["1.2.…", …], "note": "…"}`. The job
        answers once the instances are fetched; it is scored on, and each result's DICOM SR is stored back into
        its study (each item's `pacs.report_status`)."""
        owner = current_user()
        if request.is_json:
            studies = JobStudySchema().load(request.get_json(silent=True) or {})
            job = PacsJobs.submit(owner, studies["study_instance_uid"], studies["note"])
        elif bool(form["files"]) == bool(form["study_instance_uid"]):
            raise ValidationFailed(
                "Send a zip or images (field 'file'), or study_instance_uid: one of them.",
                details={"fields": ["file", "study_instance_uid"]},
            )
        elif form["study_instance_uid"]:
            job = PacsJobs.submit(owner, form["study_instance_uid"], form["note"])
        else:
            job = JobManager.submit(owner, form["modality"], form["files"], form["note"])
        return job, 202, {"Location": url_for("jobs.Job", job_id=job.id)}

    @auth_required()
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, JobListSchema)
    def get(self, query):
        """The caller's jobs, newest first."""
        return JobManager.list_for(current_user(), query["page"], query["per_page"])


@blp.route("/<uuid:job_id>")
class Job(MethodView):
    @auth_required()
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, job_id: uuid.UUID):
        """One of the caller's jobs, with its counts so far."""
        return JobManager.get_for(current_user(), job_id)

    @auth_required()
    @blp.arguments(JobCancelQuerySchema, location="query")
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    def delete(self, query, job_id: uuid.UUID):
        """Cancel a job: its unscored items are dropped; scored ones stay in the history unless purge=true."""
        return JobManager.cancel(current_user(), job_id, purge=query["purge"])


@blp.route("/<uuid:job_id>/items")
class JobItems(MethodView):
    @auth_required()
    @blp.arguments(JobItemQuerySchema, location="query")
    @blp.response(200, JobItemListSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, query, job_id: uuid.UUID):
        """A job's items in archive order, each with its prediction or its error."""
        filters = ItemFilters(status=query.get("status"), flagged=query.get("flagged"))
        return JobManager.items_for(current_user(), job_id, filters, query["page"], query["per_page"])


@blp.route("/<uuid:job_id>/results.<any(csv, jsonl):extension>")
class JobResults(MethodView):
    @auth_required()
    @blp.response(200, content_type="text/csv", description=RESULTS_DOC)
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, job_id: uuid.UUID, extension: str):
        """A job's results as one file (results.csv or results.jsonl), streamed."""
        rows = JobManager.results_for(current_user(), job_id)
        lines = csv_lines(rows) if extension == "csv" else jsonl_lines(rows)
        return Response(
            stream_with_context(lines),
            mimetype=RESULT_TYPES[extension],
            headers={
                "Content-Disposition": f'attachment; filename="job-{job_id}-results.{extension}"',
                "Cache-Control": "private, no-store",
            },
        )
