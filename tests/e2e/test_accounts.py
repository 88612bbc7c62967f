"""Accounts in the browser: the home page, registering, signing in and out, tokens, CSRF."""

from __future__ import annotations

import re
import zipfile

from playwright.sync_api import expect

from tests.e2e.helpers import register, sign_in, sign_out, upload


def test_home_page_offers_sign_in_and_create_account(page, check_page):
    page.goto("/")

    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    expect(page.get_by_role("link", name="Create account").first).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    check_page("home")


def test_keyboard_user_can_skip_to_the_main_content(page):
    page.goto("/login")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")

    expect(page.get_by_label("Email")).to_be_focused()


def test_visitor_creates_an_account_and_is_signed_in(page, new_user, check_page):
    page.goto("/register")
    check_page("register")

    register(page, new_user)

    nav = page.get_by_role("navigation", name="Main")
    for link in ("Upload", "History", "Account", "Models"):
        expect(nav.get_by_role("link", name=link)).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_register_with_a_weak_password_shows_why(page, new_user, check_page):
    page.goto("/register")
    page.get_by_label("Email").fill(new_user.email)
    page.get_by_label("Full name").fill(new_user.full_name)
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_text("Use at least 10 characters.")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    check_page("register-invalid")


def test_sign_in_with_a_wrong_password_is_refused(page, new_user, check_page):
    register(page, new_user)
    sign_out(page)

    page.goto("/login")
    check_page("login")
    page.get_by_label("Email").fill(new_user.email)
    page.get_by_label("Password", exact=True).fill("not-the-password-1")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert").or_(page.get_by_text(re.compile("incorrect|invalid", re.I))).first).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    check_page("login-refused")

    sign_in(page, new_user)


def test_signed_out_visitor_is_sent_to_sign_in(page):
    page.goto("/history")

    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_token_is_shown_once_and_can_be_revoked(page, new_user, check_page):
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    check_page("account")

    page.get_by_label("Name", exact=True).fill("backup script")
    page.get_by_role("button", name="Create token").click()

    secret = page.get_by_role("status").or_(page.locator("output")).filter(has_text=re.compile(r"msk_\w+")).first
    expect(secret).to_be_visible()
    token = re.search(r"msk_\w+", secret.inner_text())[0]
    expect(page.get_by_role("button", name="Copy token")).to_be_visible()
    check_page("account-token-created")

    page.get_by_role("link", name="Back to your account").click()
    row = page.get_by_role("row").filter(has_text="backup script")
    expect(row).to_be_visible()
    expect(page.get_by_text(token)).to_have_count(0)

    row.get_by_role("button", name="Revoke token backup script").click()
    expect(page.get_by_role("status").filter(has_text="revoked")).to_be_visible()
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("button")).to_have_count(0)


def post_without_csrf(page, form, **values):
    """Post the form's fields as the browser would (its cookies), but without the csrf_token field."""
    action = form.get_attribute("action") or page.url
    fields = form.locator("input[name]").evaluate_all("inputs => inputs.map(i => [i.name, i.value])")
    assert any(name == "csrf_token" for name, _ in fields), fields
    posted = {name: value for name, value in fields if name != "csrf_token"} | values
    return page.request.post(action, form=posted, max_redirects=0)


def test_form_posted_without_its_csrf_token_is_refused(page, new_user):
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()

    form = page.locator("form").filter(has=page.get_by_role("button", name="Create token"))
    response = post_without_csrf(page, form, name="forged token")

    assert response.status == 400, (response.status, response.text()[:300])
    assert "msk_" not in response.text()
    page.reload()
    expect(page.get_by_text("forged token")).to_have_count(0)


def test_delete_posted_without_its_csrf_token_keeps_the_result(page, new_user):
    register(page, new_user)
    prediction_id = upload(page, "breast")
    page.get_by_role("button", name="Delete").click()

    form = page.locator("form").filter(has=page.get_by_role("button", name="Yes, delete it"))
    response = post_without_csrf(page, form)

    assert response.status == 400, (response.status, response.text()[:300])
    assert page.goto(f"/predictions/{prediction_id}").status == 200


def test_sign_in_posted_without_its_csrf_token_is_refused(page, new_user):
    register(page, new_user)
    sign_out(page)
    page.goto("/login")

    form = page.locator("form").filter(has=page.get_by_role("button", name="Sign in"))
    response = post_without_csrf(page, form, email=new_user.email, password=new_user.password)

    assert response.status == 400, (response.status, response.text()[:300])
    page.goto("/history")
    expect(page).to_have_url(re.compile(r"/login"))


def test_export_my_data_downloads_a_zip_with_my_results(page, new_user):
    register(page, new_user)
    upload(page, "skin_lesion", note="in my export")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export my data").click()

    download = download_info.value
    assert download.suggested_filename.endswith(".zip"), download.suggested_filename
    with zipfile.ZipFile(download.path()) as archive:
        names = archive.namelist()
        account = archive.read(next(n for n in names if n.endswith("account.json"))).decode()
    assert new_user.email in account and "in my export" in account
    assert len([n for n in names if not n.endswith(".json")]) >= 2, names  # the photo and its heatmap


def test_deleting_my_account_signs_me_out_for_good(page, new_user, check_page):
    register(page, new_user)
    prediction_id = upload(page, "breast", note="gone with the account")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()

    # A wrong password keeps the account and says why, on the page that asks again.
    page.get_by_label("Your password, to confirm").fill("not-my-password-1")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_label("Your password, to confirm")).to_have_attribute("aria-invalid", "true")
    check_page("account-delete-refused")

    page.get_by_label("Your password, to confirm").fill(new_user.password)
    page.get_by_role("button", name="Delete my account").click()

    expect(page.get_by_role("heading", name="Your account was deleted")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    check_page("account-deleted")
    page.goto(f"/predictions/{prediction_id}")
    expect(page.locator("body")).not_to_contain_text("gone with the account")
    page.goto("/login")
    page.get_by_label("Email").fill(new_user.email)
    page.get_by_label("Password", exact=True).fill(new_user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("incorrect")
