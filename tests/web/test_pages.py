"""Public pages, the security headers every response carries, and errors as pages (the API keeps JSON)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from markupsafe import escape

from cnn_model.card import ModelCard
from cnn_model.modalities import MODALITIES, get_spec
from constants import PRIVACY_NOTE
from managers.models import ModelManager
from tests.resources.helpers import assert_error
from tests.web.conftest import page_text


def test_home_page_describes_each_kind_of_image_and_links_to_sign_in(client):
    response = client.get("/")

    assert response.status_code == 200
    text = page_text(response)
    for modality in MODALITIES:
        assert get_spec(modality).display_name in text
        assert f"/static/examples/{modality}.jpg" in text
    assert "correct on" in text and "of 100" in text
    assert "not a diagnosis" in text.lower()
    assert 'href="/login"' in text and 'href="/register"' in text
    assert text.count("<h1") == 1


def test_example_images_are_small(client):
    for modality in MODALITIES:
        response = client.get(f"/static/examples/{modality}.jpg")
        assert response.status_code == 200
        assert len(response.data) < 40 * 1024


def test_every_page_has_landmarks_and_a_skip_link(client):
    text = page_text(client.get("/"))
    for landmark in ("<header", "<nav", '<main id="main"', "<footer", 'href="#main"'):
        assert landmark in text


def test_responses_carry_the_security_headers(client):
    response = client.get("/")

    csp = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")


def test_pages_carry_no_inline_script_or_style(client):
    for path in ("/", "/login", "/register", "/models", f"/models/{MODALITIES[0]}"):
        text = page_text(client.get(path))
        assert "<script>" not in text and "style=" not in text and "<style" not in text, path


def test_swagger_ui_still_renders_under_its_own_policy(client):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert "swagger" in page_text(response).lower()
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_model_page_shows_the_cards_figures(client, modality):
    response = client.get(f"/models/{modality}")

    assert response.status_code == 200
    text = page_text(response)
    assert get_spec(modality).display_name in text
    assert "of 100" in text and "Known limitations" in text and "Licence" in text
    assert str(escape(get_spec(modality).dataset_licence)) in text  # from the modality's own module
    for plot in ("confusion_matrix", "roc"):
        image = client.get(f"/models/{modality}/{plot}.png")
        assert image.status_code == 200 and image.mimetype == "image/png"


def shipped_card(app, modality: str) -> dict:
    return json.loads((Path(app.config["MODEL_DIR"]) / modality / "card.json").read_text())


def per_100(fraction: float) -> int:
    return round(fraction * 100)


def serve_cards(monkeypatch, *cards: dict) -> None:
    """Make the model pages read these cards (as card.json holds them) instead of the installed ones."""
    typed = [ModelCard.from_json(card) for card in cards]
    monkeypatch.setattr(ModelManager, "model_cards", staticmethod(lambda: typed))


def test_model_page_says_how_the_threshold_was_chosen_from_cross_validation(app, client):
    card = shipped_card(app, "breast")
    evidence = card["decision"]["threshold_evidence"]
    assert card["decision"]["threshold_source"] == "cv_oof"

    text = " ".join(page_text(client.get("/models/breast")).split())

    assert f"at least {per_100(evidence['sensitivity_target'])} of 100 malignant images are flagged" in text
    assert f"cross-validation results for {evidence['n']} images" in text
    assert (
        "On images the threshold was not chosen on, it flagged about "
        f"{per_100(evidence['cross_fitted']['sensitivity'])} of 100 malignant images"
    ) in text
    assert "85 of 100 malignant validation images" not in text


def test_model_page_shows_cross_validation_calibration_and_the_owners_check(app, client):
    card = shipped_card(app, "breast")
    spread = card["cross_validation"]["mean_sd_over_folds"]
    check = card["held_out_checks"][0]

    text = " ".join(page_text(client.get("/models/breast")).split())

    assert "Checked by cross-validation" in text
    accuracy, sd = spread["accuracy"]
    assert f"Correct on <strong>{per_100(accuracy)} of 100</strong> images (give or take {per_100(sd)})" in text
    assert f"{spread['macro_auc'][0]:.2f} (give or take {spread['macro_auc'][1]:.2f})" in text

    assert "How sure it is" in text
    assert (
        f"off from how often it was right by about {per_100(card['calibration']['val']['served_ece'])} points" in text
    )
    assert 'src="/models/breast/reliability.png"' in text and 'alt="Reliability diagram of the' in text

    assert "Checked by the product owner" in text and "never saw them" in text
    assert f"Version {check['version']}: an earlier version" in text
    assert f"Version {card['version']}, the one in service, has not been checked this way yet" in text
    assert f"Correct on <strong>{per_100(check['accuracy'])} of 100</strong>" in text


def test_model_page_without_cross_validation_shows_the_owners_check_of_this_version(app, client, monkeypatch):
    card = copy.deepcopy(shipped_card(app, "chest_xray"))
    for key in ("cross_validation", "distillation"):
        card.pop(key, None)
    card["training"].pop("distilled_from", None)
    check = {**card["held_out_checks"][0], "version": card["version"], "which": "this version"}
    card["held_out_checks"] = [check]
    serve_cards(monkeypatch, card)

    text = " ".join(page_text(client.get("/models/chest_xray")).split())

    assert "Checked by cross-validation" not in text
    assert f"Version {check['version']}: the version in service" in text
    assert "has not been checked this way yet" not in text
    assert f"flagged <strong>{per_100(check['flag']['sensitivity'])} of 100</strong> abnormal images" in text


def test_a_distilled_models_page_says_whose_figures_and_where_its_confidence_was_tuned(app, client):
    card = shipped_card(app, "cervical_cytology")
    assert card["training"]["distilled_from"] and "val/" in card["calibration"]["rule"]

    text = " ".join(page_text(client.get("/models/cervical_cytology")).split())

    assert "one fast model that learnt from those 5; these figures are theirs" in text
    assert "tuned on these same validation images, so that figure flatters it" in text
    assert "tuned on the cross-validation results" not in text  # that was the teachers' tuning, not its own


def test_an_int8_twins_page_says_whose_answers_it_learnt_and_how_often_its_flag_differs(app, client):
    card = shipped_card(app, "skin_lesion")
    learnt = card["quantisation_aware"]
    against = learnt["served_decisions_against_the_teacher"]
    unseen = sum(split["n"] for split in against.values())
    changed = sum(split["flag_flips"] for split in against.values())

    text = " ".join(page_text(client.get("/models/skin_lesion")).split())

    teacher = learnt["teacher"]["served_as"]
    assert f"fine-tuned to give the answers of version {teacher}, trained by the recipe the cross-validation" in text
    assert f"On {unseen} images that neither version trained on, its malignant flag differed" in text
    assert f"from version {teacher}'s on {changed}, and no malignant image lost its flag" in text
    assert "8-bit" not in " ".join(page_text(client.get("/models/breast")).split())  # its own model's file


def test_a_student_serving_its_own_confidence_claims_no_tuning(app, client):
    card = shipped_card(app, "chest_xray")
    assert card["training"]["distilled_from"] and "temperature" not in (card.get("decision") or {})

    text = " ".join(page_text(client.get("/models/chest_xray")).split())

    assert "one fast model that learnt from those 5; these figures are theirs" in text
    assert "Its confidence was tuned" not in text
    assert f"off from how often it was right by about {per_100(card['calibration']['val']['served_ece'])} point" in text


@pytest.mark.parametrize("modality", MODALITIES)
def test_reliability_diagram_is_served(client, modality):
    image = client.get(f"/models/{modality}/reliability.png")

    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data.startswith(b"\x89PNG")


def test_card_without_the_new_sections_still_renders(app, client, monkeypatch):
    card = shipped_card(app, "breast")
    for key in ("cross_validation", "calibration", "held_out_checks"):
        card.pop(key, None)
    card["decision"] = {"positive_threshold": 0.4}  # an older card: chosen on validation, no evidence
    card["plots"] = {"confusion_matrix": "confusion_matrix.png", "roc": "roc.png"}
    serve_cards(monkeypatch, card)

    response = client.get("/models/breast")

    assert response.status_code == 200
    text = " ".join(page_text(response).split())
    for heading in ("Checked by cross-validation", "Checked by the product owner", "How sure it is"):
        assert heading not in text
    assert "at least 85 of 100 malignant images among the" in text and "validation images are flagged" in text
    assert "not chosen on" not in text
    assert client.get("/models/breast/reliability.png").status_code == 404


def test_threshold_target_and_owners_note_come_from_the_card(app, client, monkeypatch):
    card = copy.deepcopy(shipped_card(app, "breast"))
    card["decision"]["threshold_evidence"]["sensitivity_target"] = 0.95
    del card["decision"]["threshold_evidence"]["cross_fitted"]
    card["held_out_checks"] = [
        {"version": card["version"], "which": "this version", "accuracy": 0.9, "note": "scored twice"},
        {"version": "0.9.0", "which": "previous version's check", "note": "recall: malignant 0.70, normal 0.6"},
    ]
    serve_cards(monkeypatch, card)

    text = " ".join(page_text(client.get("/models/breast")).split())

    assert "at least 95 of 100 malignant images are flagged" in text
    assert "not chosen on" not in text
    assert "Note: scored twice" in text
    assert "It recognised Malignant lesion in 70 of 100 cases and No lesion seen in 60 of 100 cases." in text
    assert "has not been checked this way yet" not in text


def test_models_index_lists_every_model(client):
    text = page_text(client.get("/models"))
    for modality in MODALITIES:
        assert f'href="/models/{modality}"' in text


def test_unknown_model_is_the_not_found_page(client):
    response = client.get("/models/teeth")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in page_text(response)


def test_unknown_url_is_a_page_for_browsers_and_json_for_api_clients(client):
    page = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404 and page.mimetype == "text/html"

    assert_error(client.get("/no/such/page"), 404, "not_found")
    assert_error(client.get("/api/v1/nothing", headers={"Accept": "text/html"}), 404, "not_found")


def test_who_can_see_results_is_said_once_the_same_way(client):
    privacy = str(escape(PRIVACY_NOTE))

    for path in ("/", "/register"):
        text = page_text(client.get(path))
        assert text.count(privacy) == 1, path
        assert "only you can see" not in text


# Words from the model pages that mean nothing to a patient.
JARGON = re.compile(r"\b(AUC|OOF|CAM|Grad-CAM|out-of-fold|macro)\b", re.IGNORECASE)


def test_patient_pages_speak_plainly(client, patient_browser, uploaded):
    prediction_id = uploaded(patient_browser, "skin_lesion")
    pages = {"/": client, "/register": client, "/login": client}
    for path in ("/upload", "/history", "/account", f"/predictions/{prediction_id}"):
        pages[path] = patient_browser

    for path, browser in pages.items():
        found = JARGON.findall(re.sub(r"<[^>]+>", " ", page_text(browser.get(path))))
        assert not found, (path, found)


def test_upload_page_shows_how_to_take_a_good_skin_photo(patient_browser):
    text = page_text(patient_browser.get("/upload"))

    assert "How to take a good dermatoscope photo" in text
    assert "/static/examples/skin_lesion.jpg" in text and "CC BY-NC 4.0" in text
