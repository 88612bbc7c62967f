"""Predictions in the browser: upload each kind of image, the result with its heatmap, history, delete, privacy."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from cnn_model.modalities import MODALITIES, get_spec
from db import db
from managers.predictions import PredictionManager
from managers.users import UserManager
from models import Prediction
from tests.e2e.helpers import DESKTOP, PHONE, RESULT_URL, User, image_loaded, register, sign_out, upload
from tests.support.images import sample_image
from views.results import HISTORY_PAGE_SIZE

HEATMAP = re.compile("heatmap", re.IGNORECASE)


@pytest.mark.parametrize("modality", MODALITIES)
def test_upload_shows_the_result_with_its_heatmap(page, new_user, check_page, modality):
    register(page, new_user)
    if modality == MODALITIES[0]:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
        check_page("upload")

    prediction_id = upload(page, modality, note=f"e2e {modality}")

    main = page.get_by_role("main")
    expect(main).to_contain_text(get_spec(modality).display_name)
    expect(main).to_contain_text(f"e2e {modality}")
    expect(main).to_contain_text("%")
    heatmap = page.get_by_role("img", name=HEATMAP).first
    expect(heatmap).to_be_visible()
    assert image_loaded(heatmap), heatmap.get_attribute("src")
    expect(
        page.get_by_role("link", name="Download").or_(page.get_by_role("button", name="Download")).first
    ).to_be_visible()
    expect(page.get_by_role("button", name="Delete")).to_be_visible()
    assert prediction_id in page.url
    check_page(f"result-{modality}")


def test_an_uncertain_result_leads_with_the_flag_and_names_the_candidates(page, new_user, live_server, check_page):
    register(page, new_user)
    prediction_id = upload(page, "skin_lesion")
    with live_server.app.app_context():
        row = db.session.get(Prediction, uuid.UUID(prediction_id))
        row.label, row.is_positive = "mel", True
        row.prediction_set, row.set_coverage, row.certainty = ["mel", "nv"], 0.9, "uncertain"
        db.session.commit()
        db.session.remove()

    page.reload()

    expect(page.get_by_role("heading", level=1)).to_have_text("Flagged as possibly malignant")
    main = page.get_by_role("main")
    expect(main).to_contain_text("It looks most like a melanoma or a mole; MedSight cannot tell these apart")
    expect(main).to_contain_text("mostly fair skin")
    check_page("result-uncertain")


def test_on_s3_the_result_shows_the_photo_and_its_heatmap(s3_page, new_user, checker):
    """Production keeps photos on S3: the page's images must load under its CSP (img-src 'self')."""
    register(s3_page, new_user)

    upload(s3_page, "skin_lesion")

    photo = s3_page.get_by_role("img", name=re.compile("The uploaded", re.IGNORECASE))
    heatmap = s3_page.get_by_role("img", name=HEATMAP).first
    for image in (photo, heatmap):
        expect(image).to_be_visible()
        assert image_loaded(image), image.get_attribute("src")
    checker.check(s3_page, "result-s3")


def test_upload_can_leave_the_kind_of_image_to_medsight(page, new_user):
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()

    page.get_by_role("radio", name="Detect automatically").check()
    page.get_by_label("Image file").set_input_files(sample_image("chest_xray"))
    page.get_by_role("button", name="Upload").click()

    page.wait_for_url(RESULT_URL)
    expect(page.get_by_role("main")).to_contain_text(f"{get_spec('chest_xray').display_name} (recognised by MedSight)")


def test_a_kind_mismatch_is_classified_as_the_detected_kind_in_one_click(page, new_user, check_page):
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    page.get_by_role("radio", name=get_spec("skin_lesion").display_name, exact=True).check()
    page.get_by_label("Image file").set_input_files(sample_image("chest_xray"))
    page.get_by_role("button", name="Upload").click()

    offer = page.get_by_role("button", name=f"Classify it as {get_spec('chest_xray').display_name}")
    expect(offer).to_be_visible()
    expect(page.get_by_role("alert")).not_to_contain_text("choose the file again")
    check_page("upload-mismatch")
    offer.click()

    page.wait_for_url(RESULT_URL)
    expect(page.get_by_role("main")).to_contain_text(get_spec("chest_xray").display_name)


def test_result_pages_are_not_cached(page, new_user):
    register(page, new_user)
    prediction_id = upload(page, "chest_xray")

    for path in (f"/predictions/{prediction_id}", "/history"):
        response = page.goto(path)
        assert "no-store" in response.headers.get("cache-control", ""), (path, response.headers)


def test_history_filters_and_deletes_with_confirmation(page, new_user, check_page):
    register(page, new_user)
    chest_id = upload(page, "chest_xray", note="chest for history")
    breast_id = upload(page, "breast", note="breast for history")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    main = page.get_by_role("main")
    expect(main.locator(f"a[href*='{chest_id}']").first).to_be_visible()
    expect(main.locator(f"a[href*='{breast_id}']").first).to_be_visible()
    check_page("history")

    # On a phone the folded filters leave the results on the first screen.
    page.set_viewport_size(PHONE)
    expect(page.get_by_label("Kind of image")).to_be_hidden()
    expect(main.locator(f"a[href*='{breast_id}']").first).to_be_in_viewport(ratio=1)
    page.set_viewport_size(DESKTOP)

    page.get_by_text("Filter results", exact=True).click()
    page.get_by_label("Kind of image").select_option(value="breast")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert "modality=breast" in page.url
    expect(main.locator(f"a[href*='{breast_id}']").first).to_be_visible()
    expect(main.locator(f"a[href*='{chest_id}']")).to_have_count(0)
    expect(page.get_by_label("Kind of image")).to_be_visible()  # the filters stay unfolded while on
    expect(page.get_by_label("Kind of image")).to_have_value("breast")
    check_page("history-filtered")

    main.locator(f"a[href*='{breast_id}']").first.click()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete this result?")).to_be_visible()
    check_page("delete-confirm")
    page.get_by_role("button", name="Yes, delete it").click()
    page.wait_for_load_state()

    page.goto("/history")
    expect(page.get_by_role("main").locator(f"a[href*='{breast_id}']")).to_have_count(0)
    expect(page.get_by_role("main").locator(f"a[href*='{chest_id}']").first).to_be_visible()
    assert page.goto(f"/predictions/{breast_id}").status == 404


def test_history_pages_older_and_newer(page, new_user, live_server):
    register(page, new_user)
    image = sample_image("chest_xray").read_bytes()
    with live_server.app.app_context():
        owner = UserManager.get_by_email(new_user.email)
        for number in range(1, HISTORY_PAGE_SIZE + 2):
            PredictionManager.create(owner, "chest_xray", image, note=f"item {number:02d}")
        db.session.remove()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    items = page.get_by_role("main").get_by_role("listitem")
    expect(items).to_have_count(HISTORY_PAGE_SIZE)
    expect(items.first).to_contain_text(f"item {HISTORY_PAGE_SIZE + 1:02d}")
    pages = page.get_by_role("navigation", name="Pages")

    pages.get_by_role("link", name=re.compile("Older")).click()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("item 01")

    pages.get_by_role("link", name=re.compile("Newer")).click()
    expect(items).to_have_count(HISTORY_PAGE_SIZE)
    expect(items.first).to_contain_text(f"item {HISTORY_PAGE_SIZE + 1:02d}")


def test_after_sign_out_the_back_button_shows_no_medical_data(page, new_user):
    register(page, new_user)
    upload(page, "skin_lesion", note="private note about a mole")
    expect(page.get_by_role("main")).to_contain_text("private note about a mole")

    sign_out(page)
    page.go_back()
    page.wait_for_load_state()

    expect(page.locator("body")).not_to_contain_text("private note about a mole")
    expect(page.get_by_role("img", name=HEATMAP)).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_another_account_opening_a_result_gets_the_not_found_page(page, other_page, new_user, check_page):
    register(page, new_user)
    prediction_id = upload(page, "breast", note="not for strangers")
    register(other_page, User.fresh("Stan Ger"))

    response = other_page.goto(f"/predictions/{prediction_id}")

    assert response.status == 404
    expect(other_page.locator("body")).not_to_contain_text("not for strangers")
    expect(other_page.get_by_role("heading", name=re.compile("not found", re.IGNORECASE)).first).to_be_visible()
    assert other_page.request.get(f"/predictions/{prediction_id}/image").status == 404
    assert other_page.request.get(f"/predictions/{prediction_id}/heatmap").status == 404
    check_page("not-found", on=other_page)


def test_models_pages_describe_each_model(page, new_user, check_page):
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    for modality in MODALITIES:
        expect(page.get_by_role("main")).to_contain_text(get_spec(modality).display_name)
    check_page("models")

    page.get_by_role("main").locator(f"a[href$='/models/{MODALITIES[0]}']").first.click()
    expect(page).to_have_url(re.compile(rf"/models/{MODALITIES[0]}$"))
    expect(page.get_by_role("main")).to_contain_text(get_spec(MODALITIES[0]).display_name)
    check_page("model")
