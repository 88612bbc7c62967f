"""Sign-in, registration, sign-out, and the account page: password and personal access tokens."""

from __future__ import annotations

import uuid

from flask import Response, make_response, redirect, render_template, request, url_for

from auth import auth_rate_limited, current_credential, current_user
from managers.account_data import AccountDataManager
from managers.auth import AuthManager
from managers.tokens import TokenManager
from managers.users import UserManager, password_problems
from schemas.auth import LoginSchema, RegisterSchema
from schemas.tokens import TokenCreateSchema
from utils.errors import AppError, ValidationFailed
from views.forms import FormErrors, form_values, load
from views.session import (
    check_form_csrf,
    end_session,
    new_session_csrf,
    page_blueprint,
    refresh_cookie,
    safe_next,
    signed_in,
    start_session,
    visitor,
)

bp = page_blueprint("web_account", __name__)

SEE_OTHER = 303


def _after_sign_in() -> str:
    return safe_next(request.values.get("next")) or url_for("web_predictions.upload")


def _signed_in_response(email: str, password: str):
    tokens = AuthManager.login(email, password, session_csrf=new_session_csrf(), tell_disabled=True)
    return start_session(redirect(_after_sign_in(), code=SEE_OTHER), tokens)


@bp.route("/login", methods=["GET", "POST"])
@auth_rate_limited("sign_in", methods=["POST"])  # the API's limits, counted in the same buckets
def login():
    if request.method == "GET":
        if visitor() is not None:
            return redirect(_after_sign_in())
        return render_template("account/login.html", errors={}, email="", next=request.args.get("next", ""))
    check_form_csrf()
    email = request.form.get("email", "")
    try:
        body = load(LoginSchema(), form_values(request.form, ("email", "password")))
        return _signed_in_response(body["email"], body["password"])
    except FormErrors as errors:
        problems = errors
    except AppError as error:  # wrong password (401), disabled account (401 account_disabled)
        problems = FormErrors.from_app_error(error)
    page = render_template("account/login.html", errors=problems.fields, email=email, next=request.form.get("next", ""))
    return page, problems.status


@bp.route("/register", methods=["GET", "POST"])
@auth_rate_limited("register", methods=["POST"])
def register():
    if request.method == "GET":
        return render_template("account/register.html", errors={}, values={})
    check_form_csrf()
    values = form_values(request.form, ("email", "password", "full_name"))
    try:
        body = load(RegisterSchema(), values)
        UserManager.register(body["email"], body["password"], body["full_name"])
        return _signed_in_response(body["email"], body["password"])
    except FormErrors as errors:
        problems = errors
        if "password" in problems.fields:  # the account policy words it best: all its rules at once
            problems.fields["password"] = password_problems(values.get("password", ""), values.get("email"))
    except AppError as error:  # weak password (422), email taken (409)
        problems = FormErrors.from_app_error(error, field="email")
    values.pop("password", None)
    return render_template("account/register.html", errors=problems.fields, values=values), problems.status


@bp.post("/logout")
@signed_in()
def logout():
    user = current_user()
    claims = current_credential().jwt_claims
    try:
        AuthManager.logout(user, jwt_claims=claims, refresh_token=refresh_cookie())
    except ValidationFailed:  # a refresh cookie that is not this account's: revoke what we can
        AuthManager.logout(user, jwt_claims=claims)
    return end_session(redirect(url_for("web_pages.home"), code=SEE_OTHER))


# -- the account page -------------------------------------------------------------------------


def _account_page(status: int = 200, *, password_errors=None, token_errors=None, token_values=None, delete_errors=None):
    user = current_user()
    page = render_template(
        "account/index.html",
        user=user,
        tokens=TokenManager.list_for(user),
        password_errors=password_errors or {},
        token_errors=token_errors or {},
        token_values=token_values or {},
        delete_errors=delete_errors or {},
        password_changed=request.args.get("changed") == "password",
        token_revoked=request.args.get("revoked") == "token",
    )
    return page, status


@bp.get("/account")
@signed_in()
def account():
    return _account_page()


@bp.post("/account/password")
@signed_in()
@auth_rate_limited("password_change")  # the API's limits, counted in the same buckets
def change_password():
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    if not current or not new:
        missing = {
            name: ["Fill in this field."]
            for name, value in (("current_password", current), ("new_password", new))
            if not value
        }
        return _account_page(422, password_errors=missing)
    try:
        tokens = AuthManager.change_password(current_user(), current, new, session_csrf=new_session_csrf())
    except AppError as error:  # wrong current password or weak new one (422), waiting after wrong ones (429)
        page, status = _account_page(error.status, password_errors=FormErrors.from_app_error(error).fields)
        return page, status, error.headers  # Retry-After while the account waits
    # Every other session of the account is signed out; this browser gets a new one.
    return start_session(redirect(url_for("web_account.account", changed="password"), code=SEE_OTHER), tokens)


def _token_form_values() -> dict:
    values = form_values(request.form, ("name", "scopes", "expires_in_days"), lists=("scopes",))
    days = values.get("expires_in_days")
    if isinstance(days, str) and days.strip().isdigit():
        values["expires_in_days"] = int(days.strip())  # the schema takes a JSON number; a form sends text
    return values


@bp.post("/account/tokens")
@signed_in()
@auth_rate_limited("token_create", count_refusals=False)
def create_token():
    values = _token_form_values()
    try:
        body = load(TokenCreateSchema(), values)
        issued = TokenManager.create(current_user(), body["name"], body["scopes"], body["expires_in_days"])
    except FormErrors as errors:
        return _account_page(errors.status, token_errors=errors.fields, token_values=values)
    except AppError as error:
        return _account_page(error.status, token_errors=FormErrors.from_app_error(error, "name").fields)
    response = make_response(render_template("account/token_created.html", issued=issued), 201)
    return response


@bp.post("/account/tokens/<uuid:token_id>/revoke")
@signed_in()
def revoke_token(token_id: uuid.UUID):
    TokenManager.revoke(current_user(), token_id)
    return redirect(url_for("web_account.account", revoked="token"), code=SEE_OTHER)


# -- a person's own data: export it, or delete the account ---------------------------------------


# POST with the form's CSRF value: a link or image on another site must not start a download of medical data.
@bp.post("/account/export")
@signed_in()
def export_data():
    export = AccountDataManager.export(current_user())
    disposition = f'attachment; filename="{export.filename}"'
    return Response(export.data, mimetype="application/zip", headers={"Content-Disposition": disposition})


@bp.post("/account/delete")
@signed_in()
@auth_rate_limited("account_delete")  # the API's limits, counted in the same buckets
def delete_account():
    password = request.form.get("password", "")
    if not password:
        return _account_page(422, delete_errors={"delete_password": ["Fill in this field."]})
    try:
        AccountDataManager.delete_own(current_user(), password)
    except AppError as error:  # wrong password (422), waiting after wrong ones (429), the last admin (409)
        problems = FormErrors.from_app_error(error).fields
        if "password" in problems:
            problems["delete_password"] = problems.pop("password")
        page, status = _account_page(error.status, delete_errors=problems)
        return page, status, error.headers  # Retry-After while the account waits
    return end_session(redirect(url_for("web_account.account_deleted"), code=SEE_OTHER))


@bp.get("/account/deleted")
def account_deleted():
    return render_template("account/deleted.html")
