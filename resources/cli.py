"""Command-line administration: `flask --app app users ...`. Like a resource, it parses input and calls managers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import click
from flask.cli import AppGroup

from constants import AuditAction, Role
from managers.auth import AuthManager
from managers.storage_sweep import DEFAULT_GRACE, StorageSweep
from managers.users import UserManager
from schemas.auth import RegisterSchema
from utils.errors import AppError

ADMIN_PASSWORD_ENV = "MEDSIGHT_ADMIN_PASSWORD"

users_cli = AppGroup("users", help="Manage accounts: create the first admin, change roles, disable.")
auth_cli = AppGroup("auth", help="Housekeeping for sign-in state.")
storage_cli = AppGroup("storage", help="Housekeeping for photo storage.")


@auth_cli.command("prune-blocklist")
def prune_blocklist() -> None:
    """Forget revoked JWTs that have expired anyway (safe to run from cron)."""
    click.echo(f"Removed {AuthManager.prune_revocations()} expired blocklist entries.")


@storage_cli.command("sweep")
@click.option(
    "--older-than",
    "older_than",
    type=click.IntRange(min=1),
    default=int(DEFAULT_GRACE.total_seconds() // 60),
    show_default=True,
    metavar="MINUTES",
    help="Leave alone anything written more recently (an upload may be between storing and recording it).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def sweep(older_than: int, dry_run: bool) -> None:
    """Remove stored photos, heatmaps and unfinished writes that no record refers to (safe to run from cron)."""
    with _reported_on_the_command_line():
        report = StorageSweep.run(older_than=timedelta(minutes=older_than), dry_run=dry_run)
    failed = {id(listed) for listed, _ in report.failed}
    for listed in report.orphans:
        what = "unfinished write" if listed.partial else "unreferenced"
        done = "would remove" if dry_run else ("could not remove" if id(listed) in failed else "removed")
        click.echo(f"{done} {listed.key} ({what}, written {listed.modified_at:%Y-%m-%d %H:%M} UTC)")
    verb = "would be removed" if dry_run else "removed"
    click.echo(
        f"Examined {report.examined} stored objects: {len(report.orphans) - len(report.failed)} {verb}, "
        f"{report.too_recent} younger than {older_than} minutes left alone."
    )
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} could not be removed; run the sweep again later.")


@contextmanager
def _reported_on_the_command_line() -> Iterator[None]:
    """A domain error becomes click's one-line error (and exit status 1), its details spelled out."""
    try:
        yield
    except AppError as error:
        problems = "; ".join(
            f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
            for field, messages in error.details.items()
        )
        raise click.ClickException(f"{error.message}{' ' + problems if problems else ''}") from error


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--full-name", default=None, help="The admin's name, for display.")
def create_admin(email: str, full_name: str | None) -> None:
    """Create an admin account. Password from $MEDSIGHT_ADMIN_PASSWORD, else asked for twice."""
    if RegisterSchema().validate({"email": email}, partial=True):  # the rule registration applies
        raise click.BadParameter(f"{email!r} is not a valid email address.", param_hint="EMAIL")
    password = os.environ.get(ADMIN_PASSWORD_ENV) or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _reported_on_the_command_line():
        user = UserManager.create(
            email, password, role=Role.ADMIN, full_name=full_name, audit_action=AuditAction.USER_CREATE_ADMIN
        )
    click.echo(f"Created admin {user.email} (id {user.id}).")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def set_role(email: str, role: str) -> None:
    """Give an existing account the role patient, admin or clinician."""
    with _reported_on_the_command_line():
        user = UserManager.set_role(UserManager.get_by_email(email), role)
    click.echo(f"{user.email} is now {user.role}.")


@users_cli.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable an account: every token it holds stops working on the next request."""
    _set_active(email, False)


@users_cli.command("enable")
@click.argument("email")
def enable(email: str) -> None:
    """Enable a disabled account again."""
    _set_active(email, True)


def _set_active(email: str, is_active: bool) -> None:
    with _reported_on_the_command_line():
        user = UserManager.set_active(UserManager.get_by_email(email), is_active)
    click.echo(f"{user.email} is {'enabled' if is_active else 'disabled'}.")
