"""`flask --app app jobs ...`: run a Celery worker for batch jobs, submit a job from the command line, or send
the reports a PACS has not taken yet."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from cnn_model.modalities import MODALITIES
from constants import AUTO_MODALITY
from managers.jobs import JobManager
from managers.pacs import PacsReports
from managers.users import UserManager
from utils.errors import AppError

jobs_cli = AppGroup("jobs", help="Batch jobs: run a worker, submit an archive, send reports to the PACS.")


@jobs_cli.command(
    "worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False
)
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker for batch jobs (needs CELERY_BROKER_URL); other options go to `celery worker`."""
    celery_app = current_app.extensions.get("celery")
    if celery_app is None:
        raise click.ClickException(
            "CELERY_BROKER_URL is not set: jobs are scored inside the app process, no worker is needed."
        )
    queue = current_app.config["CELERY_QUEUE"]
    celery_app.worker_main(["worker", "--queues", queue, "--prefetch-multiplier", "1", *ctx.args])


@jobs_cli.command("submit")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--email", required=True, help="The account the job belongs to.")
@click.option(
    "--modality",
    type=click.Choice([*MODALITIES, AUTO_MODALITY]),
    default=AUTO_MODALITY,
    show_default=True,
    help="What every image is (the gate checks it), or auto: the gate decides per image.",
)
@click.option("--note", default=None, help="Kept with each prediction.")
def submit(archive: Path, email: str, modality: str, note: str | None) -> None:
    """Submit a zip of images (or one image) as a job of the account EMAIL."""
    try:
        owner = UserManager.get_by_email(email)
        declared = None if modality == AUTO_MODALITY else modality
        with archive.open("rb") as stream:
            job = JobManager.submit(owner, declared, [(archive.name, stream)], note)
    except AppError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from error
    click.echo(f"Job {job.id}: {job.status}, {job.counts.total} items.")


@jobs_cli.command("deliver")
def deliver() -> None:
    """Send every PACS job's reports that the PACS has not taken yet (safe to run from cron: a sent one is not
    sent again)."""
    waiting = 0
    jobs = PacsReports.waiting_jobs()
    for job_id in jobs:
        waiting += PacsReports.deliver_and_schedule(job_id)
    click.echo(f"{len(jobs)} jobs with reports to send; {waiting} still waiting for the PACS.")
