"""Upload, result, images, history and delete in the browser, over the same manager as the API."""

from __future__ import annotations

import uuid

import pytest
from markupsafe import escape

from cnn_model.modalities import get_spec
from cnn_model.runtime import ARTIFACTS_DIR, ModelRunner
from constants import Role
from db import db
from managers.users import UserManager
from models import AuditEvent, Prediction
from tests.support.images import sample_image, sample_images
from tests.support.synthetic import foreign_png
from tests.web.conftest import csrf_of, page_text, sign_in


def test_upload_page_offers_every_kind_with_a_sentence(patient_browser):
    response = patient_browser.get("/upload")

    assert response.status_code == 200
    text = page_text(response)
    assert 'name="file"' in text and 'name="note"' in text and 'enctype="multipart/form-data"' in text
    assert text.count('type="radio" id="modality-') == 5
    assert "Detect automatically" in text
    assert 'id="modality-auto" name="modality" value="auto" aria-describedby="modality-auto-hint" checked' in text
    assert ">Upload</button>" in text


def test_detect_automatically_lets_the_gate_choose(patient_browser, upload_page):
    response = upload_page(patient_browser, "auto", path=sample_image("chest_xray"))

    assert response.status_code == 303
    text = page_text(patient_browser.get(response.headers["Location"]))
    assert get_spec("chest_xray").display_name in text and "recognised by MedSight" in text


@pytest.mark.parametrize("modality", ["skin_lesion", "chest_xray", "breast", "cervical_cytology"])
def test_uploading_a_real_image_leads_to_its_result(patient_browser, upload_page, modality):
    response = upload_page(patient_browser, modality, note="left forearm")

    assert response.status_code == 303
    result = patient_browser.get(response.headers["Location"])
    assert result.status_code == 200
    text = page_text(result)
    spec = get_spec(modality)
    assert any(c.display_name in text for c in spec.classes)
    assert "left forearm" in text and "not a diagnosis" in text.lower()
    assert 'alt="Heatmap' in text
    assert '<svg class="bar"' in text and "%" in text
    assert "no-store" in result.headers["Cache-Control"]


def test_result_shows_the_finding_in_plain_words(app, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "chest_xray")
    with app.app_context():
        row = db.session.get(Prediction, __import__("uuid").UUID(prediction_id))
        finding = get_spec(row.modality).class_spec(row.label)

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    assert finding.display_name in text and finding.description in text
    assert ("Flagged as possibly abnormal" in text) == row.is_positive
    assert f'href="/models/{row.modality}"' in text


def _stored_set(app, prediction_id: str, prediction_set: list[str] | None, **fields) -> Prediction:
    """Give a stored row the prediction set a test needs (None: a row from before prediction sets)."""
    with app.app_context():
        row = db.session.get(Prediction, uuid.UUID(prediction_id))
        row.prediction_set = prediction_set
        row.set_coverage = 0.9 if prediction_set else None
        row.certainty = None if prediction_set is None else ("clear" if len(prediction_set) == 1 else "uncertain")
        for name, value in fields.items():
            setattr(row, name, value)
        db.session.commit()
        db.session.refresh(row)
        db.session.expunge(row)
        return row


def _headline(text: str) -> str:
    return text.split("<h1>", 1)[1].split("</h1>", 1)[0]


def test_uncertain_result_names_the_candidates_in_words_and_no_single_finding(app, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "skin_lesion")
    _stored_set(app, prediction_id, ["mel", "nv"], label="mel", is_positive=True)

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    assert (
        "It looks most like a melanoma or a mole; MedSight cannot tell these apart in this image — show it to a "
        "dermatologist." in text
    )
    title = text.split("<title>", 1)[1].split("</title>", 1)[0]
    for heading in (_headline(text), title):
        assert "Flagged as possibly malignant" in heading
        assert not any(c.display_name in heading for c in get_spec("skin_lesion").classes)
    assert '<p class="finding">' not in text
    assert text.index(get_spec("skin_lesion").advice.flagged) < text.index("It looks most like")


def test_three_candidates_read_as_a_list_in_words(app, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "skin_lesion")
    _stored_set(app, prediction_id, ["nv", "bkl", "df"], label="nv", is_positive=False)

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    assert "It looks most like a mole, a benign keratosis or a dermatofibroma;" in text
    assert "Not flagged as malignant" in _headline(text)


def test_clear_result_names_its_finding_after_the_flag_and_its_advice(app, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "chest_xray")
    with app.app_context():
        row = db.session.get(Prediction, uuid.UUID(prediction_id))
        label, positive = row.label, row.is_positive
    _stored_set(app, prediction_id, [label])
    spec = get_spec("chest_xray")
    advice = spec.advice.flagged if positive else spec.advice.not_flagged

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    finding = f'<p class="finding">{spec.class_spec(label).display_name}</p>'
    assert finding in text
    assert text.index(str(escape(advice))) < text.index(finding)
    assert spec.class_spec(label).display_name not in _headline(text)
    assert "could rule out every other finding" in text and "at least 90 times in 100" in text


def test_result_from_before_prediction_sets_shows_the_most_likely_finding_plainly(app, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "chest_xray")
    row = _stored_set(app, prediction_id, None)

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    assert f'<p class="finding">{get_spec("chest_xray").class_spec(row.label).display_name}</p>' in text
    assert "before MedSight said how sure it is" in text and "It looks most like" not in text


@pytest.mark.parametrize("modality", ["skin_lesion", "chest_xray"])
def test_result_states_what_the_model_is_for_and_its_main_limitation(patient_browser, uploaded, modality):
    prediction_id = uploaded(patient_browser, modality)

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    assert "What it is for" in text and "not a diagnosis" in text.lower()
    assert str(escape(get_spec(modality).main_limitation)) in text
    assert {"skin_lesion": "mostly fair skin", "chest_xray": "children aged 1 to 5"}[modality] in text


def test_a_picture_uploaded_as_a_skin_lesion_says_medsight_reads_dermatoscope_photos_only(patient_browser, upload_page):
    response = upload_page(patient_browser, "skin_lesion", data=foreign_png("text page"))

    assert response.status_code == 422
    text = page_text(response)
    assert "MedSight reads dermatoscope photos only" in text and "ordinary phone or camera photo" in text
    assert 'id="reclassify"' not in text


def test_a_kind_mismatch_offers_the_detected_kind_in_one_click(patient_browser, upload_page):
    response = upload_page(patient_browser, "skin_lesion", path=sample_image("chest_xray"))

    assert response.status_code == 422
    text = page_text(response)
    name = get_spec("chest_xray").display_name
    assert f'id="reclassify" data-modality="chest_xray">Classify it as {name}</button>' in text
    assert f"choose “{name}” below and choose the file again" in text  # without JavaScript
    assert 'id="modality-skin_lesion" name="modality" value="skin_lesion"' in text.split("checked", 1)[0]


def test_unflagged_advice_speaks_of_the_kind_of_image(app, patient_browser, uploaded):
    runner = ModelRunner(ARTIFACTS_DIR / "chest_xray")
    film = next(path for path in sample_images("chest_xray", "normal") if not runner.predict(path).is_positive)
    chest_id = uploaded(patient_browser, "chest_xray", path=film)
    with app.app_context():
        assert db.session.get(Prediction, uuid.UUID(chest_id)).is_positive is False

    text = page_text(patient_browser.get(f"/predictions/{chest_id}"))

    advice = text.split('id="flag">', 1)[1].split("</div>", 1)[0]
    assert "talk to a clinician" in advice and "your symptoms" in advice
    assert "colour" not in advice and "size" not in advice  # a lesion's changes mean nothing on an X-ray


def test_photo_and_heatmap_are_served_to_the_owner_only_and_never_cached(
    patient_browser, browser, make_account, uploaded
):
    prediction_id = uploaded(patient_browser)

    for kind, mimetype in (("image", "image/jpeg"), ("heatmap", "image/png")):
        response = patient_browser.get(f"/predictions/{prediction_id}/{kind}")
        assert response.status_code == 200 and response.mimetype == mimetype
        assert "no-store" in response.headers["Cache-Control"]
    download = patient_browser.get(f"/predictions/{prediction_id}/image?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment")

    stranger = browser(make_account())
    assert stranger.get(f"/predictions/{prediction_id}/image").status_code == 404
    assert browser().get(f"/predictions/{prediction_id}/image").status_code == 302


def test_thumbnail_is_small_kept_in_storage_cached_privately_and_owner_only(
    app, patient_browser, browser, make_account, uploaded
):
    prediction_id = uploaded(patient_browser)

    response = patient_browser.get(f"/predictions/{prediction_id}/thumbnail")

    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert len(response.data) <= 20 * 1024
    assert response.headers["Cache-Control"].startswith("private, max-age=")
    assert "Cookie" in response.headers["Vary"]
    with app.app_context():
        image_key = db.session.get(Prediction, uuid.UUID(prediction_id)).image_key
        thumbnail_key = "thumbnails/" + image_key.split("/", 1)[1]
        assert app.extensions["storage"].get_object(thumbnail_key).data == response.data
    assert patient_browser.get(f"/predictions/{prediction_id}/thumbnail").data == response.data
    assert browser(make_account()).get(f"/predictions/{prediction_id}/thumbnail").status_code == 404

    confirm = patient_browser.get(f"/predictions/{prediction_id}/delete")
    patient_browser.post(f"/predictions/{prediction_id}/delete", data={"csrf_token": csrf_of(confirm)})
    with app.app_context():
        assert thumbnail_key not in {listed.key for listed in app.extensions["storage"].list_objects()}


# The date picker offers any day from 0001-01-01 to 9999-12-31; each must give a page, never a 500.
@pytest.mark.parametrize("day", ["9999-12-31", "9999-12-30", "0001-01-01"])
@pytest.mark.parametrize("field", ["created_after", "created_before"])
def test_history_takes_every_day_the_date_picker_offers(patient_browser, field, day):
    response = patient_browser.get("/history", query_string={field: day})

    assert response.status_code == 200, page_text(response)[:300]


def test_history_until_the_last_day_is_the_whole_history(patient_browser, uploaded):
    prediction_id = uploaded(patient_browser)

    both = {"created_after": "2000-01-01", "created_before": "9999-12-31"}
    response = patient_browser.get("/history", query_string=both)

    assert response.status_code == 200 and f"/predictions/{prediction_id}" in page_text(response)


def test_on_s3_the_photo_and_heatmap_come_through_the_app_not_a_redirect(build_app, s3_bucket, upload_page):
    """Production keeps photos on S3; the pages' CSP (img-src 'self') would block a redirect to the bucket."""
    app = build_app(**s3_bucket)
    with app.app_context():
        UserManager.create("owner@example.org", "correct-horse-42", full_name="Pat")
        UserManager.create("admin@example.org", "correct-horse-42", role=Role.ADMIN, full_name="Ad")
    owner, admin = app.test_client(), app.test_client()
    sign_in(owner, "owner@example.org", "correct-horse-42")
    sign_in(admin, "admin@example.org", "correct-horse-42")
    path = sample_image("skin_lesion")
    prediction_id = upload_page(owner, "skin_lesion", path).headers["Location"].rsplit("/", 1)[-1]

    for client in (owner, admin):
        photo = client.get(f"/predictions/{prediction_id}/image")
        heatmap = client.get(f"/predictions/{prediction_id}/heatmap")
        assert photo.status_code == 200 and "Location" not in photo.headers
        assert photo.data == path.read_bytes() and photo.mimetype == "image/jpeg"
        assert photo.content_length == len(photo.data)
        assert heatmap.status_code == 200 and heatmap.mimetype == "image/png" and heatmap.data.startswith(b"\x89PNG")
        for response in (photo, heatmap):
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "no-store" in response.headers["Cache-Control"]
    download = owner.get(f"/predictions/{prediction_id}/image?download=1")
    assert download.headers["Content-Disposition"] == f'attachment; filename="medsight-{prediction_id}.jpg"'


def test_another_users_result_is_the_not_found_page(patient_browser, browser, make_account, uploaded):
    prediction_id = uploaded(patient_browser, note="not for strangers")
    stranger = browser(make_account())

    response = stranger.get(f"/predictions/{prediction_id}")

    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "not for strangers" not in page_text(response)
    assert "Page not found" in page_text(response)


def test_refusals_are_plain_sentences(patient_browser, upload_page):
    not_an_image = upload_page(patient_browser, "skin_lesion", data=b"just some text, not a picture")
    unknown_kind = upload_page(patient_browser, "teeth")
    empty = upload_page(patient_browser, "skin_lesion", data=b"")

    assert not_an_image.status_code == 415 and "not an image MedSight can read" in page_text(not_an_image)
    assert unknown_kind.status_code == 422 and "Choose the kind of image" in page_text(unknown_kind)
    assert empty.status_code == 422 and "The file is empty" in page_text(empty)


def test_upload_larger_than_the_limit_is_the_too_large_page(app, patient_browser, monkeypatch):
    token = csrf_of(patient_browser.get("/upload"))
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)

    response = patient_browser.post(
        "/upload",
        data={"csrf_token": token, "modality": "skin_lesion", "file": (__import__("io").BytesIO(b"x" * 4096), "a.jpg")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "too large" in page_text(response).lower()


def test_upload_without_csrf_is_refused_and_keeps_nothing(app, patient_browser):
    response = patient_browser.post(
        "/upload",
        data={
            "modality": "chest_xray",
            "file": (
                open(__import__("tests.support.images", fromlist=["x"]).sample_image("chest_xray"), "rb"),
                "x.jpg",
            ),
        },
        content_type="multipart/form-data",
    )

    assert response.status_code == 400
    with app.app_context():
        assert db.session.query(Prediction).count() == 0


def test_history_is_empty_at_first_and_invites_an_upload(patient_browser):
    text = page_text(patient_browser.get("/history"))

    assert "No results yet" in text and 'href="/upload"' in text


def test_history_lists_filters_and_links_each_result(patient_browser, uploaded):
    chest = uploaded(patient_browser, "chest_xray")
    breast = uploaded(patient_browser, "breast")

    everything = page_text(patient_browser.get("/history"))
    only_breast = page_text(patient_browser.get("/history?modality=breast&flagged=&created_after=2000-01-01"))

    assert f"/predictions/{chest}" in everything and f"/predictions/{breast}" in everything
    assert f"/predictions/{chest}/thumbnail" in everything  # small thumbnails through a signed-in route
    assert f"/predictions/{breast}" in only_breast and f"/predictions/{chest}" not in only_breast


def test_history_names_an_uncertain_results_candidates_not_one_finding(app, patient_browser, uploaded):
    uncertain = uploaded(patient_browser, "skin_lesion")
    _stored_set(app, uncertain, ["mel", "nv"], label="mel", is_positive=True)
    clear = uploaded(patient_browser, "skin_lesion")
    _stored_set(app, clear, ["bcc"], label="bcc", is_positive=True)

    items = page_text(patient_browser.get("/history")).split('<li class="history-item">')[1:]
    shown = {item.split('href="/predictions/', 1)[1][:36]: item for item in items}

    assert '<span class="title">Melanoma or melanocytic nevus (mole)</span>' in shown[uncertain]
    assert "tag-uncertain" in shown[uncertain]
    assert '<span class="title">Basal cell carcinoma</span>' in shown[clear]
    assert "tag-uncertain" not in shown[clear]


def test_history_filter_mistakes_are_shown_not_failed(patient_browser):
    response = patient_browser.get("/history?created_after=yesterday&modality=teeth")

    assert response.status_code == 200
    assert "Give a date" in page_text(response)


@pytest.mark.parametrize(
    ("query", "is_open"),
    [
        ("", False),
        ("?modality=&flagged=", False),  # an emptied form filters nothing
        ("?modality=breast", True),
        ("?flagged=yes", True),
        ("?created_after=yesterday", True),  # a refused filter is shown with its message
        ("?cursor=not-a-cursor", False),  # a bad page link is no filter, and the form has nothing to show for it
    ],
)
def test_history_filters_fold_away_unless_in_use(patient_browser, query, is_open):
    text = page_text(patient_browser.get(f"/history{query}"))

    folded = '<details class="filter-toggle">' in text
    unfolded = '<details class="filter-toggle" open>' in text
    assert (folded, unfolded) == (not is_open, is_open)
    assert "<summary>Filter results</summary>" in text and 'id="filter-modality"' in text


def test_history_pages_older_and_newer(app, patient_browser, uploaded, monkeypatch):
    monkeypatch.setattr("views.predictions.HISTORY_PAGE_SIZE", 2)
    ids = [uploaded(patient_browser, "cervical_cytology") for _ in range(5)]
    newest_first = ids[::-1]

    first = page_text(patient_browser.get("/history"))
    assert "Newer" not in first and "Older" in first
    older_link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = page_text(patient_browser.get(older_link))
    assert all(f'/predictions/{i}"' in second for i in newest_first[2:4])
    newer_link = second.split('rel="prev"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    back = page_text(patient_browser.get(newer_link))
    assert all(f'/predictions/{i}"' in back for i in newest_first[:2])


def test_delete_asks_first_then_deletes(app, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser)

    confirm = patient_browser.get(f"/predictions/{prediction_id}/delete")
    assert confirm.status_code == 200 and "Yes, delete it" in page_text(confirm)
    refused = patient_browser.post(f"/predictions/{prediction_id}/delete")
    assert refused.status_code == 400
    assert patient_browser.get(f"/predictions/{prediction_id}").status_code == 200

    deleted = patient_browser.post(f"/predictions/{prediction_id}/delete", data={"csrf_token": csrf_of(confirm)})

    assert deleted.status_code == 303
    assert patient_browser.get(f"/predictions/{prediction_id}").status_code == 404
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="prediction.delete").count() == 1


@pytest.mark.parametrize("modality", ["skin_lesion", "breast"])
def test_the_result_gives_the_advice_its_modality_writes_for_the_flag(app, patient_browser, uploaded, modality):
    prediction_id = uploaded(patient_browser, modality)
    with app.app_context():
        flagged = db.session.get(Prediction, uuid.UUID(prediction_id)).is_positive
    advice = get_spec(modality).advice

    text = page_text(patient_browser.get(f"/predictions/{prediction_id}"))

    given, other = (advice.flagged, advice.not_flagged) if flagged else (advice.not_flagged, advice.flagged)
    assert str(escape(given)) in text and str(escape(other)) not in text


@pytest.mark.parametrize(
    ("probability", "shown"), [(0.997, ">99%"), (1.0, "100%"), (0.004, "<1%"), (0.0, "0%"), (0.4649, "46%")]
)
def test_a_probability_is_never_shown_as_certain_or_as_none_when_it_is_not(probability, shown):
    from views.results import percent_text

    assert percent_text(probability) == shown


def test_the_result_page_offers_the_files_for_a_hospital_system(patient_browser, upload_page, browser, admin):
    import io

    from pydicom import dcmread

    response = upload_page(patient_browser, "chest_xray")
    result = patient_browser.get(response.headers["Location"])
    assert "Download for a hospital system" in page_text(result)
    prediction_id = response.headers["Location"].rsplit("/", 1)[-1]
    sr = patient_browser.get(f"/predictions/{prediction_id}/dicom-sr")
    assert sr.status_code == 200 and sr.mimetype == "application/dicom"
    assert sr.headers["Cache-Control"] == "private, no-store"
    assert dcmread(io.BytesIO(sr.get_data())).SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    bundle = patient_browser.get(f"/predictions/{prediction_id}/fhir")
    assert bundle.status_code == 200 and bundle.get_json()["resourceType"] == "Bundle"
    assert browser(admin).get(f"/predictions/{prediction_id}/fhir").status_code == 404  # the owner's only
