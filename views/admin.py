"""Administration pages: accounts (role, enable/disable), everyone's predictions, the audit trail. Admins only."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Response, redirect, render_template, request, url_for

from auth import current_user
from cnn_model.modalities import MODALITIES, get_spec
from constants import PAGE_READ_WINDOW_SECONDS, AuditAction, Role
from managers.account_data import AccountDataManager
from managers.admin import AdminManager, AuditFilters, UserFilters
from managers.audit_trail import AuditTrailManager, action_name
from managers.predictions import PredictionFilters, PredictionManager
from managers.users import UserManager
from schemas.admin import AuditQuerySchema, UserQuerySchema, UserUpdateSchema
from schemas.pagination import CursorField
from schemas.predictions import AdminPredictionQuerySchema
from utils.errors import AppError
from views.forms import FormErrors, day_bounds, form_values, load, load_filters
from views.results import HISTORY_PAGE_SIZE, result_view, viewer_view
from views.session import page_blueprint, signed_in

bp = page_blueprint("web_admin", __name__, url_prefix="/admin")

SEE_OTHER = 303
PAGE_SIZE = 25
admin_only = signed_in(Role.ADMIN)


def _user_id(text: str, field: str, errors: dict) -> str | None:
    """An account named by its id or its email, as the id the schemas take."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        user = UserManager.find_by_email(text)
        if user is None:
            errors[field] = ["No account has this email or id."]
            return None
        return str(user.id)


# -- accounts ---------------------------------------------------------------------------------


# The banner after a change is named by a code in the address, never carried as text: a link cannot
# put words of its own on this page.
UPDATE_MESSAGES = {
    "role": "Role changed.",
    "enabled": "Account enabled.",
    "disabled": "Account disabled.",
    "deleted": "Account deleted, with all its results, photos and tokens.",
}


@bp.get("/users")
@admin_only
def users():
    given = form_values(request.args, ("email", "role", "status", "page"))
    values = {k: v for k, v in given.items() if k in ("email", "role", "page")}
    if given.get("status") in ("active", "disabled"):
        values["is_active"] = given["status"] == "active"
    errors: dict = {}
    query = load_filters(UserQuerySchema(), values, PAGE_SIZE, errors)
    page = AdminManager.list_users(current_user(), UserFilters.of(query), query["page"], query["per_page"])
    return render_template(
        "admin/users.html",
        page=page,
        given=given,
        errors=errors,
        roles=[r.value for r in Role],
        message=UPDATE_MESSAGES.get(request.args.get("message", "")),
    )


# What each change does to the account, said on its confirmation page before it is made.
CHANGES = {
    ("role", "admin"): (
        "Make {who} an administrator?",
        "Yes, make them an administrator",
        "They will see every account and everyone's results, photos and heatmaps, change and delete accounts, "
        "and read the audit trail. Each of their reads of someone else's records is recorded.",
    ),
    ("role", "patient"): (
        "Make {who} a patient?",
        "Yes, make them a patient",
        "They lose the administration pages at once: no other account, no one else's results and no audit trail. "
        "Their own results stay in their history.",
    ),
    ("is_active", "false"): (
        "Disable {who}?",
        "Yes, disable the account",
        "They are signed out, cannot sign in again, and their personal access tokens stop working. "
        "Their results, photos and heatmaps are kept, and an administrator can enable the account again.",
    ),
    ("is_active", "true"): (
        "Enable {who}?",
        "Yes, enable the account",
        "They can sign in again, and their personal access tokens that have not expired or been revoked work again.",
    ),
}


@bp.get("/users/<uuid:user_id>/change")
@admin_only
def confirm_change(user_id: uuid.UUID):
    """The confirmation step before an account's role or status changes: what will happen, and a way back."""
    given = form_values(request.args, ("role", "is_active"))
    change = next(((name, value) for name, value in given.items() if (name, value) in CHANGES), None)
    if change is None:
        return redirect(url_for("web_admin.users"), code=SEE_OTHER)
    account = AdminManager.get_user(current_user(), user_id)
    title, button, consequence = CHANGES[change]
    return render_template(
        "admin/change_user.html",
        account=account,
        field=change[0],
        value=change[1],
        title=title.format(who=account.email),
        button=button,
        consequence=consequence,
    )


@bp.post("/users/<uuid:user_id>")
@admin_only
def update_user(user_id: uuid.UUID):
    values = form_values(request.form, ("role", "is_active"))
    if values.get("is_active") in ("true", "false"):
        values["is_active"] = values["is_active"] == "true"  # the schema takes a JSON boolean; a form sends text
    try:
        body = load(UserUpdateSchema(), values)
        AdminManager.update_user(current_user(), user_id, role=body.get("role"), is_active=body.get("is_active"))
    except (FormErrors, AppError) as refused:
        fields = refused.fields if isinstance(refused, FormErrors) else FormErrors.from_app_error(refused).fields
        message = " ".join(m for messages in fields.values() for m in messages)
        status = refused.status
        page = render_template("admin/refused.html", message=message, back=url_for("web_admin.users"))
        return page, status
    done = "role" if "role" in values else ("enabled" if values.get("is_active") else "disabled")
    return redirect(url_for("web_admin.users", message=done), code=SEE_OTHER)


# POST with the form's CSRF value, as the account's own export (views.account.export_data).
@bp.post("/users/<uuid:user_id>/export")
@admin_only
def export_user(user_id: uuid.UUID):
    export = AccountDataManager.export_for_admin(current_user(), user_id)
    disposition = f'attachment; filename="{export.filename}"'
    return Response(export.data, mimetype="application/zip", headers={"Content-Disposition": disposition})


@bp.route("/users/<uuid:user_id>/delete", methods=["GET", "POST"])
@admin_only
def delete_user(user_id: uuid.UUID):
    if request.method == "GET":
        return render_template("admin/delete_user.html", account=AdminManager.get_user(current_user(), user_id))
    try:
        AccountDataManager.delete_by_admin(current_user(), user_id)
    except AppError as refused:
        message = " ".join(m for messages in FormErrors.from_app_error(refused).fields.values() for m in messages)
        return render_template("admin/refused.html", message=message, back=url_for("web_admin.users")), refused.status
    return redirect(url_for("web_admin.users", message="deleted"), code=SEE_OTHER)


# -- everyone's predictions -------------------------------------------------------------------


class AdminPredictionPageSchema(AdminPredictionQuerySchema):
    """The admin list's filters and paging as the API takes them, plus paging back (before) for "Newer"."""

    before = CursorField()


@bp.get("/predictions")
@admin_only
def predictions():
    given = form_values(request.args, ("user", "modality", "label", "flagged", "created_after", "created_before"))
    errors: dict = {}
    values = form_values(request.args, ("modality", "label", "cursor", "before"))
    if "user" in given and (owner := _user_id(given["user"], "user", errors)):
        values["user_id"] = owner
    if given.get("flagged") in ("yes", "no"):
        values["is_positive"] = given["flagged"] == "yes"
    values.update(day_bounds(given, "created_after", "created_before", errors))
    query = load_filters(AdminPredictionPageSchema(), values, HISTORY_PAGE_SIZE, errors)
    filters = PredictionFilters(
        **{name: query.get(name) for name in ("modality", "label", "is_positive", "created_after", "created_before")},
        owner_id=query.get("user_id"),
    )
    page = PredictionManager.list_all(
        current_user(),
        filters,
        1,
        query["per_page"],
        after=query.get("cursor"),
        before=query.get("before"),
    )
    return render_template(
        "admin/predictions.html",
        page=page,
        given=given,
        errors=errors,
        labels=[(get_spec(m), list(get_spec(m).classes)) for m in MODALITIES],
        specs={m: get_spec(m) for m in MODALITIES},
    )


@bp.get("/predictions/<uuid:prediction_id>")
@admin_only
def prediction(prediction_id: uuid.UUID):
    """Any user's prediction; reading someone else's is audited, as the API's admin read is."""
    record = PredictionManager.get_any(current_user(), prediction_id)
    return render_template("predictions/result.html", **result_view(record), admin_view=True)


@bp.get("/predictions/<uuid:prediction_id>/view")
@admin_only
def view(prediction_id: uuid.UUID):
    """The larger view of any user's image, audited as the record page is: opened from that page just before, it is
    part of the same read, as the record's photo and heatmap are."""
    window = timedelta(seconds=PAGE_READ_WINDOW_SECONDS)
    record = PredictionManager.get_any(current_user(), prediction_id, read_within=window)
    return render_template("predictions/view.html", **viewer_view(record), admin_view=True)


# -- the audit trail --------------------------------------------------------------------------


def _audit_query(args) -> tuple[dict, dict, dict]:
    """The trail's filters as given, loaded through the API's schema: (query, the filters as given, errors)."""
    given = form_values(args, ("actor", "action", "after", "before", "page"))
    errors: dict = {}
    values = form_values(args, ("action", "page"))
    if "actor" in given and (actor := _user_id(given["actor"], "actor", errors)):
        values["actor_id"] = actor
    values.update(day_bounds(given, "after", "before", errors))
    query = load_filters(AuditQuerySchema(), values, PAGE_SIZE, errors)
    return query, given, errors


@bp.get("/audit")
@admin_only
def audit():
    query, given, errors = _audit_query(request.args)
    page = AdminManager.list_audit(current_user(), AuditFilters.of(query), query["page"], query["per_page"])
    return render_template(
        "admin/audit.html",
        page=page,
        lines=AuditTrailManager.describe(page.items),
        summary=AuditTrailManager.summary(),
        given={name: value for name, value in given.items() if name != "page"},
        errors=errors,
        actions=[(a.value, action_name(a.value)) for a in AuditAction],
    )


# POST with the form's CSRF value: the export is itself an audited act, never one a link can start.
@bp.post("/audit/export")
@admin_only
def export_audit():
    query, _given, _errors = _audit_query(request.form)
    export = AuditTrailManager.export_csv(current_user(), AuditFilters.of(query))
    disposition = f'attachment; filename="{export.filename}"'
    return Response(export.data, mimetype="text/csv", headers={"Content-Disposition": disposition})
