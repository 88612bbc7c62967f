"""Registration, sign-in and sign-out in the browser: cookies, CSRF, renewal, and the account page."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask_jwt_extended import create_access_token, decode_token

from db import db
from managers.sign_in_backoff import FREE_FAILURES
from managers.users import UserManager
from models import ApiToken
from tests.resources.helpers import bearer
from tests.web.conftest import ACCESS_COOKIE, REFRESH_COOKIE, csrf_of, page_text, sign_in


def _set_cookie_headers(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_registering_signs_in_with_httponly_samesite_cookies(app, browser):
    client = browser()
    token = csrf_of(client.get("/register"))

    response = client.post(
        "/register",
        data={
            "email": "new@example.org",
            "password": "analytical-engine-1843",
            "full_name": "Ada",
            "csrf_token": token,
        },
    )

    assert response.status_code == 303 and response.headers["Location"] == "/upload"
    cookies = _set_cookie_headers(response)
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        assert "HttpOnly" in cookies[name] and "SameSite=Strict" in cookies[name]
    assert "Sign out" in page_text(client.get("/upload"))


def test_registration_without_its_csrf_token_is_refused_and_nothing_is_made(app, browser):
    client = browser()
    client.get("/register")

    response = client.post("/register", data={"email": "forged@example.org", "password": "analytical-engine-1843"})

    assert response.status_code == 400 and response.mimetype == "text/html"
    with app.app_context():
        assert UserManager.find_by_email("forged@example.org") is None


def test_weak_password_is_explained_on_the_form(browser):
    client = browser()
    token = csrf_of(client.get("/register"))

    response = client.post("/register", data={"email": "weak@example.org", "password": "short", "csrf_token": token})

    assert response.status_code == 422
    assert "at least 10 characters" in page_text(response)
    assert ACCESS_COOKIE not in _set_cookie_headers(response)


def test_wrong_password_says_so(browser, patient):
    client = browser()
    token = csrf_of(client.get("/login"))

    response = client.post(
        "/login", data={"email": patient.email, "password": "not-the-password-1", "csrf_token": token}
    )

    assert response.status_code == 401
    assert "incorrect" in page_text(response)


def test_disabled_account_is_told_it_is_disabled(app, browser, patient):
    with app.app_context():
        UserManager.set_active(UserManager.get(patient.id), False)
    client = browser()
    token = csrf_of(client.get("/login"))

    response = client.post("/login", data={"email": patient.email, "password": patient.password, "csrf_token": token})

    assert response.status_code == 401
    assert "disabled" in page_text(response) and "incorrect" not in page_text(response)


def test_signed_out_visitor_is_sent_to_sign_in_and_back(browser, patient):
    client = browser()

    response = client.get("/history")

    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/history"
    token = csrf_of(client.get(response.headers["Location"]))
    signed_in = client.post(
        "/login", data={"email": patient.email, "password": patient.password, "csrf_token": token, "next": "/history"}
    )
    assert signed_in.headers["Location"] == "/history"


def test_sign_in_never_sends_the_browser_to_another_site(browser, patient):
    client = browser()
    token = csrf_of(client.get("/login"))

    response = client.post(
        "/login",
        data={"email": patient.email, "password": patient.password, "csrf_token": token, "next": "//evil.example"},
    )

    assert response.headers["Location"] == "/upload"


# Each is what a browser could read as another site once it drops tabs and newlines and turns "\\" into "/".
HOSTILE_NEXT = [
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "//evil.example/%2F..",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/\u0085/evil.example",
]


def _leaves_for_another_site(location: str) -> bool:
    """Whether a browser would follow location off this site (it drops tabs and newlines, reads "\\" as "/")."""
    seen = re.sub(r"[\t\n\r]", "", location).replace("\\", "/").lstrip()
    parts = urlsplit(seen)
    return bool(parts.scheme or parts.netloc) or seen.startswith("//")


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_sign_in_sends_a_hostile_next_home(browser, patient, target):
    client = browser()
    token = csrf_of(client.get("/login"))

    response = client.post(
        "/login", data={"email": patient.email, "password": patient.password, "csrf_token": token, "next": target}
    )

    assert response.status_code == 303 and response.headers["Location"] == "/upload"


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_a_signed_in_visit_to_sign_in_never_leaves_the_site(patient_browser, target):
    response = patient_browser.get("/login", query_string={"next": target})

    assert response.status_code == 302 and response.headers["Location"] == "/upload"


@pytest.mark.parametrize(
    "query",
    ["next=/%09/evil.example", "next=/%0A/x", "next=/%0D%0ASet-Cookie:x=1", "next=%2F%09%2Fevil.example"],
)
def test_encoded_control_characters_in_next_are_sent_home(patient_browser, query):
    response = patient_browser.get(f"/login?{query}")

    assert response.status_code == 302 and not _leaves_for_another_site(response.headers["Location"])
    assert response.headers["Location"] == "/upload"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/predictions?page=2", "/predictions?page=2"),
        ("/history?modality=breast&flagged=yes", "/history?modality=breast&flagged=yes"),
        ("/models/skin_lesion#card", "/models/skin_lesion"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # a path of ours (browsers keep %2F as it is)
        ("/history?q=a b", "/history?q=a%20b"),
    ],
)
def test_a_path_of_ours_is_where_sign_in_returns(browser, patient, target, location):
    client = browser()
    token = csrf_of(client.get("/login"))

    response = client.post(
        "/login", data={"email": patient.email, "password": patient.password, "csrf_token": token, "next": target}
    )

    assert response.headers["Location"] == location and not _leaves_for_another_site(location)


def test_session_cookies_last_as_long_as_their_tokens(app, browser, patient):
    client = browser()
    token = csrf_of(client.get("/login"))

    response = client.post("/login", data={"email": patient.email, "password": patient.password, "csrf_token": token})

    cookies = _set_cookie_headers(response)
    refresh_seconds = int(app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
    access_seconds = int(app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    assert f"Max-Age={refresh_seconds}" in cookies[REFRESH_COOKIE] and "Expires=" in cookies[REFRESH_COOKIE]
    assert f"Max-Age={access_seconds}" in cookies[ACCESS_COOKIE]
    client.delete_cookie(ACCESS_COOKIE)
    renewed = client.get("/account")
    assert f"Max-Age={access_seconds}" in _set_cookie_headers(renewed)[ACCESS_COOKIE]


def test_a_session_cookie_does_not_authorize_the_api(patient_browser):
    assert patient_browser.get("/api/v1/auth/me").status_code == 401
    assert patient_browser.get("/api/v1/predictions").status_code == 401


def test_an_expired_access_cookie_is_renewed_from_the_refresh_cookie(patient_browser):
    patient_browser.delete_cookie(ACCESS_COOKIE)

    response = patient_browser.get("/account")

    assert response.status_code == 200
    assert ACCESS_COOKIE in _set_cookie_headers(response)
    # The form signed before renewal still carries the session's CSRF value.
    token = csrf_of(response)
    patient_browser.delete_cookie(ACCESS_COOKIE)
    created = patient_browser.post("/account/tokens", data={"name": "after renewal", "csrf_token": token})
    assert created.status_code == 201


def test_an_access_token_past_its_time_is_renewed(app, patient, patient_browser):
    with app.test_request_context():
        claims = decode_token(patient_browser.get_cookie(ACCESS_COOKIE).value)
        expired = create_access_token(
            identity=patient.id, expires_delta=timedelta(seconds=-1), additional_claims={"csrf": claims["csrf"]}
        )
    patient_browser.set_cookie(ACCESS_COOKIE, expired)

    response = patient_browser.get("/history")

    assert response.status_code == 200
    renewed = _set_cookie_headers(response)[ACCESS_COOKIE].split(";", 1)[0].split("=", 1)[1]
    assert renewed != expired


def test_sign_out_revokes_both_tokens_and_clears_the_cookies(app, patient_browser):
    access = patient_browser.get_cookie(ACCESS_COOKIE).value
    refresh = patient_browser.get_cookie(REFRESH_COOKIE).value
    token = csrf_of(patient_browser.get("/account"))

    response = patient_browser.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert patient_browser.get_cookie(ACCESS_COOKIE) is None and patient_browser.get_cookie(REFRESH_COOKIE) is None
    assert app.test_client().get("/api/v1/auth/me", headers=bearer(access)).status_code == 401
    assert app.test_client().post("/api/v1/auth/refresh", headers=bearer(refresh)).status_code == 401
    assert patient_browser.get("/account").status_code == 302


def test_sign_out_without_csrf_is_refused(patient_browser):
    response = patient_browser.post("/logout")

    assert response.status_code == 400 and response.mimetype == "text/html"
    assert patient_browser.get("/account").status_code == 200


def test_account_page_shows_the_account_and_is_not_cached(patient_browser, patient):
    response = patient_browser.get("/account")

    assert response.status_code == 200
    assert patient.email in page_text(response) and "Patient" in page_text(response)
    assert "no-store" in response.headers["Cache-Control"]


def test_changing_the_password(app, patient_browser, patient, browser):
    token = csrf_of(patient_browser.get("/account"))

    wrong = patient_browser.post(
        "/account/password",
        data={"current_password": "wrong-password-1", "new_password": "new-password-123", "csrf_token": token},
    )
    changed = patient_browser.post(
        "/account/password",
        data={"current_password": patient.password, "new_password": "new-password-123", "csrf_token": token},
    )

    assert wrong.status_code == 422 and "incorrect" in page_text(wrong)
    assert changed.status_code == 303
    sign_in(browser(), patient.email, "new-password-123")


def test_changing_the_password_signs_out_every_other_session_but_this_one(app, browser, patient, login):
    changing, other_browser, api = browser(patient), browser(patient), login(patient.email, patient.password)
    other_refresh = other_browser.get_cookie(REFRESH_COOKIE).value
    token = csrf_of(changing.get("/account"))

    changed = changing.post(
        "/account/password",
        data={"current_password": patient.password, "new_password": "new-password-123", "csrf_token": token},
    )

    assert changed.status_code == 303
    assert {ACCESS_COOKIE, REFRESH_COOKIE} <= set(_set_cookie_headers(changed))
    page = changing.get(changed.headers["Location"])
    assert page.status_code == 200 and "signed out" in page_text(page)
    # The new session's forms work (a new CSRF value came with its cookies).
    created = changing.post("/account/tokens", data={"name": "after change", "csrf_token": csrf_of(page)})
    assert created.status_code == 201
    # The other browser is sent to sign in, and its refresh cookie no longer renews its access.
    assert other_browser.get("/account").status_code == 302
    other_browser.delete_cookie(ACCESS_COOKIE)
    assert other_browser.get("/account").status_code == 302
    assert app.test_client().post("/api/v1/auth/refresh", headers=bearer(other_refresh)).status_code == 401
    # So are the API's tokens from before.
    assert app.test_client().get("/api/v1/auth/me", headers=bearer(api["access_token"])).status_code == 401


def test_changing_the_password_keeps_personal_access_tokens(app, patient_browser, patient):
    token = csrf_of(patient_browser.get("/account"))
    created = patient_browser.post("/account/tokens", data={"name": "backup script", "csrf_token": token})
    secret = re.search(r"msk_[A-Za-z0-9_\-]+", page_text(created)).group(0)

    changed = patient_browser.post(
        "/account/password",
        data={"current_password": patient.password, "new_password": "new-password-123", "csrf_token": token},
    )

    assert changed.status_code == 303
    assert app.test_client().get("/api/v1/auth/me", headers=bearer(secret)).status_code == 200


def test_wrong_current_passwords_on_the_page_are_slowed_down(patient_browser, patient):
    token = csrf_of(patient_browser.get("/account"))
    wrong = {"current_password": "wrong-guess-1", "new_password": "new-password-123", "csrf_token": token}
    for _ in range(FREE_FAILURES + 1):
        assert patient_browser.post("/account/password", data=wrong).status_code == 422

    waiting = patient_browser.post("/account/password", data={**wrong, "current_password": patient.password})

    assert waiting.status_code == 429 and int(waiting.headers["Retry-After"]) > 0
    assert "try again in" in page_text(waiting)
    assert patient_browser.get("/account").status_code == 200  # still signed in, nothing changed


def test_token_is_shown_once_then_listed_and_revoked(app, patient_browser):
    token = csrf_of(patient_browser.get("/account"))

    created = patient_browser.post(
        "/account/tokens",
        data={"name": "backup script", "scopes": ["read"], "expires_in_days": "30", "csrf_token": token},
    )

    assert created.status_code == 201
    assert "msk_" in page_text(created)
    listed = page_text(patient_browser.get("/account"))
    assert "backup script" in listed and "msk_" in listed  # the prefix, never the secret
    with app.app_context():
        row = db.session.query(ApiToken).filter_by(name="backup script").one()
        assert row.scopes == ["read"] and row.expires_at is not None
        secret_start = page_text(created).split(row.prefix, 1)[1][:20]
    assert secret_start not in listed

    revoked = patient_browser.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    with app.app_context():
        assert db.session.get(ApiToken, row.id).revoked_at is not None


def test_token_form_without_csrf_is_refused_and_makes_nothing(app, patient_browser):
    response = patient_browser.post("/account/tokens", data={"name": "forged token"})

    assert response.status_code == 400
    with app.app_context():
        assert db.session.query(ApiToken).filter_by(name="forged token").count() == 0


def test_token_form_errors_are_shown(patient_browser):
    token = csrf_of(patient_browser.get("/account"))

    response = patient_browser.post("/account/tokens", data={"name": "", "expires_in_days": "999", "csrf_token": token})

    assert response.status_code == 422
    text = page_text(response)
    assert 'aria-invalid="true"' in text
