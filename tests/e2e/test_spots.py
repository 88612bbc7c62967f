"""Spots in the browser: two photos of one named spot, the second of another lesion; the spot's page with its chart
and photos side by side; rename and delete; every new page axe-clean at phone and desktop width."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from cnn_model.modalities import get_spec
from tests.e2e.helpers import RESULT_URL, register
from tests.support.images import FIXTURE_IMAGES_DIR

ONE_LESION = FIXTURE_IMAGES_DIR / "skin_lesion" / "akiec" / "ISIC_0024913.jpg"
OTHER_LESION = FIXTURE_IMAGES_DIR / "skin_lesion" / "mel" / "ISIC_0024496.jpg"


def upload_spot_photo(page, photo: Path, spot: str, body_site: str | None = None) -> str:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    page.get_by_role("radio", name=get_spec("skin_lesion").display_name, exact=True).check()
    page.locator("input[type=file][name=file]").set_input_files(photo)
    page.get_by_role("combobox", name="Spot (optional)").fill(spot)
    if body_site:
        page.get_by_label("Where on the body").select_option(body_site)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(RESULT_URL)
    return RESULT_URL.search(page.url)["id"]


def test_follow_a_spot_over_time(page, new_user, check_page):
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    check_page("spots-upload-field")
    upload_spot_photo(page, ONE_LESION, "Mole, left shoulder", "back")
    expect(page.get_by_role("main")).to_contain_text("A photo of Mole, left shoulder")
    expect(page.locator("#other-lesion")).to_have_count(0)

    upload_spot_photo(page, OTHER_LESION, "mole, left shoulder")
    expect(page.locator("#other-lesion")).to_contain_text("This photo may show a different spot")
    check_page("spots-result-other-lesion")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Spots").click()
    expect(page.get_by_role("main")).to_contain_text("2 photos")
    check_page("spots-list")
    page.get_by_role("link", name="Mole, left shoulder").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mole, left shoulder")
    expect(page.locator(".spot-card")).to_have_count(2)
    expect(page.locator(".spot-chart circle")).to_have_count(2)
    expect(page.locator(".spot-card").nth(1)).to_contain_text("may show a different spot")
    check_page("spots-detail")

    page.get_by_label("Name", exact=True).fill("Mole, right shoulder")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mole, right shoulder")
    page.get_by_role("button", name="Delete this spot").click()
    expect(page.get_by_role("status")).to_contain_text("The spot was deleted")
    check_page("spots-list-empty")
