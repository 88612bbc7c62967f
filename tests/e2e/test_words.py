"""What the pages say: who can see a result, and how to take a photo worth reading."""

from __future__ import annotations

from playwright.sync_api import expect

from constants import PRIVACY_NOTE
from tests.e2e.helpers import image_loaded, register


def test_home_and_register_say_the_same_about_who_sees_results(page, check_page):
    page.goto("/")
    expect(page.get_by_role("main")).to_contain_text(PRIVACY_NOTE)
    check_page("home-privacy")
    page.goto("/register")
    expect(page.get_by_role("main")).to_contain_text(PRIVACY_NOTE)


def test_upload_page_unfolds_a_one_screen_photo_guide(page, new_user, check_page):
    register(page, new_user)
    page.goto("/upload")
    page.get_by_text("How to take a good dermatoscope photo").click()
    example = page.get_by_role("img", name="A good example")
    expect(example).to_be_visible()
    assert image_loaded(example)
    guide = page.locator(".photo-guide")
    for size in ({"width": 390, "height": 844}, {"width": 1280, "height": 800}):
        page.set_viewport_size(size)
        assert guide.bounding_box()["height"] <= size["height"], size
    check_page("upload-photo-guide")
