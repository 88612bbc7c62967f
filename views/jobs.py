"""Batch jobs in the browser: send an archive, follow its progress, look at what needs a look, get the CSV, cancel.

The progress page works without JavaScript (it refreshes itself, and has a Refresh link); with it,
static/js/job_progress.js reads /jobs/<id>/progress (this page's JSON, behind the same session) and
updates the bar, the counts and the estimate in place.
"""

from __future__ import annotations

import uuid

from flask import Response, current_app, jsonify, redirect, render_template, request, stream_with_context, url_for

from auth import current_user
from cnn_model.modalities import MODALITIES, get_spec
from constants import AUTO_MODALITY, JOB_NOTE_MAX_LENGTH, JobStatus
from managers.job_progress import JobProgress, JobProgressManager
from managers.jobs import JobManager
from managers.models import ModelManager
from schemas.jobs import JobUploadSchema
from utils.errors import AppError, ArchiveTooLarge
from utils.result_files import csv_lines
from views.forms import FormErrors, form_values, load
from views.session import page_blueprint, signed_in

bp = page_blueprint("web_jobs", __name__)

SEE_OTHER = 303
JOBS_PAGE_SIZE = 20
POLL_SECONDS = 2
# Without JavaScript, a running job's page reloads itself this often.
REFRESH_SECONDS = 10
# Multipart headers and the form's other fields around the archive itself.
_FORM_OVERHEAD_BYTES = 64 * 1024

STATUS_WORDS = {
    JobStatus.QUEUED.value: "Waiting to start",
    JobStatus.RUNNING.value: "Scoring",
    JobStatus.DONE.value: "Finished",
    JobStatus.CANCELLED.value: "Cancelled",
    JobStatus.FAILED.value: "Not started: the queue was not reachable",
}


def _item_reasons() -> dict[str, str]:
    limit_mb = current_app.config["MAX_UPLOAD_MB"]
    return {
        "unsupported_media_type": "Not an image MedSight reads (JPEG, PNG, BMP, TIFF or WebP; DICOM for chest X-rays).",
        "invalid_image": "Could not be read as an image; it may be damaged.",
        "empty_file": "The file is empty.",
        "payload_too_large": f"Larger than {limit_mb} MB, the most one image may be.",
        "image_too_large": "Has too many pixels to read safely.",
        "image_quality": "Not clear enough for the model to read (blurred, too dark or too small).",
        "not_a_medical_image": "Does not look like any kind of medical image MedSight reads.",
        "modality_mismatch": "Not the kind of image this job was sent as.",
        "dicom_burned_in_annotation": "A DICOM file with text burned into the image (it may name the patient), "
        "so it was not read.",
        "unreadable_entry": "Damaged inside the archive: it could not be unpacked.",
        "encrypted_entry": "Password-protected inside the archive.",
        "storage_quota_exceeded": "Your account's storage was full.",
        "account_disabled": "The account was disabled while the job ran.",
    }


def _refusal(error: AppError) -> str:
    """A refused submission in a plain sentence."""
    reason = error.details.get("reason")
    if error.code == "archive_too_large":
        config = current_app.config
        return {
            "too_many_entries": f"The archive holds more than {config['JOB_MAX_ENTRIES']} files, the most one job may.",
            "uncompressed_size": f"Unpacked, the archive is larger than {config['JOB_MAX_UNCOMPRESSED_MB']} MB.",
        }.get(reason, f"The archive is larger than {config['JOB_MAX_ARCHIVE_MB']} MB, the most one job may be.")
    if error.code == "invalid_archive":
        return {
            "not_a_zip": "This is not a zip archive MedSight can read. Send a .zip of images, or the images.",
            "empty_archive": "The archive holds no files.",
            "compression_ratio": "An entry inflates far more than images do (a zip bomb?), so the archive was refused.",
            "size_mismatch": "An entry holds more than the archive says it does, so the archive was refused.",
            "nested_archive": "An archive inside the archive: send the images in one zip.",
            "unsafe_entry_name": "An entry's name points outside the archive, so the archive was refused.",
        }.get(reason, error.message)
    return error.message


def eta_words(seconds: int | None) -> str:
    if seconds is None:
        return "Working out how long it will take…"
    if seconds < 60:
        return "Less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"About {minutes} minute{'' if minutes == 1 else 's'} left"
    return f"About {seconds / 3600:.1f} hours left"


def progress_json(progress: JobProgress) -> dict:
    counts = progress.counts
    return {
        "status": progress.job.status,
        "status_text": STATUS_WORDS.get(progress.job.status, progress.job.status),
        "active": progress.active,
        "total": counts.total,
        "scored": counts.scored,
        "failed": counts.failed,
        "flagged": counts.flagged,
        "pending": counts.pending,
        "settled": progress.settled,
        "percent": progress.percent,
        "eta_seconds": progress.eta_seconds,
        "eta_text": eta_words(progress.eta_seconds) if progress.active else "",
    }


@bp.before_request
def _allow_archive_sized_bodies() -> None:
    """An archive may be far larger than one image (JOB_MAX_ARCHIVE_MB, not MAX_UPLOAD_MB)."""
    if request.method != "POST" or request.endpoint != "web_jobs.index":
        return
    limit = current_app.config["JOB_MAX_ARCHIVE_BYTES"]
    if request.content_length is not None and request.content_length > limit + _FORM_OVERHEAD_BYTES:
        raise ArchiveTooLarge(
            f"The archive is larger than {limit // (1024 * 1024)} MB, the most one job may be.",
            details={"reason": "archive_size", "limit_bytes": limit},
        )
    request.max_content_length = limit + _FORM_OVERHEAD_BYTES


def _index_page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    page_number = request.args.get("page", "1")
    page = JobManager.list_for(
        current_user(), int(page_number) if page_number.isdigit() and int(page_number) > 0 else 1, JOBS_PAGE_SIZE
    )
    auto_modality = AUTO_MODALITY if ModelManager.gate_version() is not None else None
    page_html = render_template(
        "jobs/index.html",
        page=page,
        kinds=[get_spec(m) for m in MODALITIES],
        auto_modality=auto_modality,
        errors=errors or {},
        values=values if values is not None else {"modality": auto_modality},
        status_words=STATUS_WORDS,
        note_max=JOB_NOTE_MAX_LENGTH,
    )
    return page_html, status


@bp.route("/jobs", methods=["GET", "POST"])
@signed_in()
def index():
    if request.method == "GET":
        return _index_page()
    values = form_values(request.form, ("modality", "note"))
    files = [part for part in request.files.getlist("file") if part.filename]
    try:
        form = load(JobUploadSchema(), {**values, "file": files})
        job = JobManager.submit(current_user(), form["modality"], form["files"], form["note"])
    except FormErrors as errors:
        messages = {"file": ["Choose a zip of images, or the images, to send."]} if "file" in errors.fields else {}
        if "note" in errors.fields:
            messages["note"] = [f"Keep the note to {JOB_NOTE_MAX_LENGTH} characters or fewer."]
        if "modality" in errors.fields:
            messages["modality"] = ["Choose the kind of images, or let MedSight detect it."]
        return _index_page(errors.status, messages or errors.fields, values)
    except AppError as error:
        return _index_page(error.status, {"file": [_refusal(error)]}, values)
    return redirect(url_for("web_jobs.detail", job_id=job.id), code=SEE_OTHER)


@bp.get("/jobs/<uuid:job_id>")
@signed_in()
def detail(job_id: uuid.UUID):
    user = current_user()
    progress = JobProgressManager.progress_for(user, job_id)
    reasons = _item_reasons()
    return render_template(
        "jobs/detail.html",
        progress=progress,
        job=progress.job,
        status=progress_json(progress),
        review=JobProgressManager.review_items(user, job_id),
        failed=JobProgressManager.failed_items(user, job_id),
        reason_of=lambda code: reasons.get(code, f"Not scored ({code})."),
        specs={m: get_spec(m) for m in MODALITIES},
        poll_ms=POLL_SECONDS * 1000,
        refresh_seconds=REFRESH_SECONDS,
    )


@bp.get("/jobs/<uuid:job_id>/progress")
@signed_in()
def progress(job_id: uuid.UUID):
    """The progress page's counts and estimate as JSON, for its script to poll."""
    response = jsonify(progress_json(JobProgressManager.progress_for(current_user(), job_id)))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/jobs/<uuid:job_id>/results.csv")
@signed_in()
def results_csv(job_id: uuid.UUID):
    """The job's results as the API's results.csv: one line per archive entry, streamed."""
    rows = JobManager.results_for(current_user(), job_id)
    return Response(
        stream_with_context(csv_lines(rows)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="job-{job_id}-results.csv"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.post("/jobs/<uuid:job_id>/cancel")
@signed_in()
def cancel(job_id: uuid.UUID):
    JobManager.cancel(current_user(), job_id, purge=request.form.get("purge") == "1")
    return redirect(url_for("web_jobs.detail", job_id=job_id), code=SEE_OTHER)
