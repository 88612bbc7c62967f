"""`flask --app app jobs ...`: run a Celery worker for batch jobs, or submit a job from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from cnn_model.modalities import MODALITIES
from constants import AUTO_MODALITY
from managers.jobs import JobManager
from managers.users import UserManager
from utils.errors import AppError

jobs_cli = AppGroup("jobs", help="Batch jobs: run a worker, submit an archive.")


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
