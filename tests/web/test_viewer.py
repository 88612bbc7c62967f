"""The larger view of a result's image: the owner's page, an admin's audited one, brightness and contrast for the
grey-scale kinds only, links to the full-size images for a browser without JavaScript."""

from __future__ import annotations

from db import db
from models import AuditEvent
from tests.web.conftest import page_text


def test_the_result_page_links_to_the_larger_view(patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "skin_lesion")

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    assert f'href="/predictions/{prediction_id}/view"' in text


def test_the_owner_sees_the_photo_and_heatmap_with_links_to_each_at_full_size(patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "skin_lesion")

    response = patient_browser.get(f"/predictions/{prediction_id}/view")

    text = page_text(response)
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    assert 'id="viewer-photo"' in text and 'id="viewer-heatmap"' in text
    assert f'<a href="/predictions/{prediction_id}/image">Open the full-size image</a>' in text
    assert f'<a href="/predictions/{prediction_id}/heatmap">Open the full-size heatmap</a>' in text
    assert f'href="/predictions/{prediction_id}">Back to the result' in text
    # A colour photo has no window and level to set.
    assert "viewer-brightness" not in text and "viewer-contrast" not in text


def test_grey_scale_kinds_offer_brightness_and_contrast(patient_browser, uploaded):
    for modality in ("chest_xray", "breast"):
        prediction_id = uploaded(patient_browser, modality)

        text = page_text(patient_browser.get(f"/predictions/{prediction_id}/view"))

        assert 'id="viewer-brightness"' in text and 'id="viewer-contrast"' in text, modality


def test_the_larger_view_is_the_owners_only(patient_browser, browser, make_account, admin_browser, uploaded):
    prediction_id = uploaded(patient_browser, "breast", note="not for strangers")

    stranger = browser(make_account()).get(f"/predictions/{prediction_id}/view")

    assert stranger.status_code == 404 and "not for strangers" not in page_text(stranger)
    assert browser().get(f"/predictions/{prediction_id}/view").status_code == 302  # signed out: to sign in
    assert admin_browser.get(f"/predictions/{prediction_id}/view").status_code == 404  # an admin's is under /admin
    assert browser(make_account()).get(f"/admin/predictions/{prediction_id}/view").status_code == 403


def test_an_admins_larger_view_is_one_audited_read_with_the_record(app, admin_browser, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "chest_xray")

    record = page_text(admin_browser.get(f"/admin/predictions/{prediction_id}"))
    view = admin_browser.get(f"/admin/predictions/{prediction_id}/view")
    admin_browser.get(f"/predictions/{prediction_id}/image")

    assert f'href="/admin/predictions/{prediction_id}/view"' in record
    assert view.status_code == 200 and "uploaded by" in page_text(view)
    assert f'href="/admin/predictions/{prediction_id}">Back to the result' in page_text(view)
    with app.app_context():
        reads = db.session.query(AuditEvent).filter_by(action="prediction.read", target_id=prediction_id).all()
        assert [event.details["what"] for event in reads] == ["record"]


def test_an_admins_larger_view_opened_first_is_audited(app, admin_browser, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "skin_lesion")

    assert admin_browser.get(f"/admin/predictions/{prediction_id}/view").status_code == 200

    with app.app_context():
        reads = db.session.query(AuditEvent).filter_by(action="prediction.read", target_id=prediction_id).count()
        assert reads == 1
