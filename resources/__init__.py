"""HTTP (and command-line) entry points: thin blueprints that parse, call one manager, and dump.

Add an area: a module here with ``blp = Blueprint(...)`` made from resources.api.Blueprint, and
its blueprint in BLUEPRINTS below; create_app registers them all with the Api (and so the
OpenAPI document).
"""

from __future__ import annotations

from flask import Flask

from resources import (
    admin,
    admin_jobs,
    auth,
    care,
    health,
    hospital_formats,
    jobs,
    legacy,
    me,
    metrics,
    models,
    predictions,
    spots,
    tokens,
)
from resources.api import Api
from resources.cli import auth_cli, storage_cli, users_cli

BLUEPRINTS = (health.blp, auth.blp, tokens.blp, predictions.blp, admin.blp, models.blp, legacy.blp, metrics.blp, me.blp)
# Batch jobs, kept apart so the lines above stay as they are.
BLUEPRINTS += (jobs.blp, admin_jobs.blp)
# The care loop: shares, reviews, links and the report.
BLUEPRINTS += (care.blp,)
# A prediction as DICOM SR and FHIR, for a hospital's systems.
BLUEPRINTS += (hospital_formats.blp, hospital_formats.admin_blp)
# Spots followed over time.
BLUEPRINTS += (spots.blp,)
CLI_GROUPS = (users_cli, auth_cli, storage_cli)


def register_resources(app: Flask, api: Api) -> None:
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    for group in CLI_GROUPS:
        app.cli.add_command(group)
