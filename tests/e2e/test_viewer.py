"""The larger view of a result's image in the browser: zoom by keys, wheel and pinch, pan by keys and drag, the
cell crop kept pixel-sharp, brightness and contrast on an X-ray, links without JavaScript, an admin's view."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from db import db
from models import AuditEvent
from tests.e2e.helpers import image_loaded, new_context, register, sign_in, upload

VIEW_URL = re.compile(r"/predictions/[0-9a-f-]{36}/view$")


def open_viewer(page):
    page.get_by_role("link", name="Larger view, to zoom").click()
    page.wait_for_url(VIEW_URL)
    photo = page.get_by_role("img", name=re.compile("The uploaded"))
    assert image_loaded(photo), photo.get_attribute("src")
    expect(page.locator("#viewer.is-live")).to_have_count(1)
    return page.get_by_role("group", name=re.compile("The image"))


def transform(page) -> str:
    return page.locator("#viewer-layer").evaluate("layer => layer.style.transform")


def scale(page) -> float:
    return float(page.locator("#viewer").get_attribute("data-scale"))


def test_the_viewer_zooms_and_pans_by_keys_and_keeps_a_cells_pixels_sharp(page, new_user, check_page):
    register(page, new_user)
    upload(page, "cervical_cytology")  # the fixture's first cell is a 61 x 81 px crop
    stage = open_viewer(page)
    check_page("viewer-cervical")

    fitted, fitted_transform = scale(page), transform(page)
    assert fitted > 1  # a 61 x 81 px crop fills the stage enlarged
    photo = page.locator("#viewer-photo")
    assert photo.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"

    stage.focus()
    page.keyboard.press("+")
    page.keyboard.press("+")
    assert scale(page) > fitted * 1.5 and transform(page) != fitted_transform
    expect(page.locator("#viewer-scale")).to_have_text("156%")
    zoomed = transform(page)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert transform(page) != zoomed  # moved, the zoom kept
    assert (
        re.search(r"scale\((?P<s>[\d.]+)\)", transform(page))["s"] == re.search(r"scale\((?P<s>[\d.]+)\)", zoomed)["s"]
    )
    page.keyboard.press("-")
    page.keyboard.press("0")
    assert scale(page) == fitted


def test_the_viewer_zooms_by_wheel_and_pinch_and_pans_by_drag(page, new_user):
    register(page, new_user)
    upload(page, "skin_lesion")
    stage = open_viewer(page)
    fitted = scale(page)
    box = stage.bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    page.mouse.move(*centre)
    page.mouse.wheel(0, -400)
    expect(page.locator("#viewer")).not_to_have_attribute("data-scale", f"{fitted:.4f}")
    wheeled = scale(page)
    assert wheeled > fitted

    before = transform(page)
    page.mouse.down()
    page.mouse.move(centre[0] + 60, centre[1] + 40, steps=4)
    page.mouse.up()
    assert transform(page) != before and scale(page) == wheeled

    # Two touch pointers moving apart: a pinch zooms in about their midpoint.
    stage.evaluate(
        """(stage) => {
          const box = stage.getBoundingClientRect(), cx = box.left + box.width / 2, cy = box.top + box.height / 2;
          const send = (type, id, x) => stage.dispatchEvent(new PointerEvent(type, {
            pointerId: id, pointerType: "touch", isPrimary: id === 11, clientX: x, clientY: cy, bubbles: true}));
          send("pointerdown", 11, cx - 20); send("pointerdown", 12, cx + 20);
          send("pointermove", 11, cx - 60); send("pointermove", 12, cx + 60);
          send("pointerup", 11, cx - 60); send("pointerup", 12, cx + 60);
        }"""
    )
    assert scale(page) > wheeled


def test_on_an_x_ray_brightness_and_contrast_change_the_image(page, new_user, check_page):
    register(page, new_user)
    upload(page, "chest_xray")
    open_viewer(page)
    photo = page.locator("#viewer-photo")
    assert photo.evaluate("img => img.style.filter") == "brightness(1) contrast(1)"

    brightness = page.get_by_role("slider", name="Brightness (level)")
    brightness.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    expect(brightness).to_have_value("120")
    assert photo.evaluate("img => img.style.filter") == "brightness(1.2) contrast(1)"
    assert photo.evaluate("img => getComputedStyle(img).filter") == "brightness(1.2) contrast(1)"
    page.get_by_role("slider", name="Contrast (window)").fill("180")
    assert photo.evaluate("img => img.style.filter") == "brightness(1.2) contrast(1.8)"
    strength = page.get_by_role("slider", name="Heatmap strength")
    strength.fill("0")
    assert page.locator("#viewer-heatmap").evaluate("img => getComputedStyle(img).opacity") == "0"
    check_page("viewer-chest-adjusted")

    page.get_by_role("button", name="Reset brightness and contrast").click()
    assert photo.evaluate("img => img.style.filter") == "brightness(1) contrast(1)"


def test_a_colour_photo_offers_no_brightness_or_contrast(page, new_user):
    register(page, new_user)
    upload(page, "skin_lesion")
    open_viewer(page)

    expect(page.get_by_role("slider", name="Heatmap strength")).to_be_visible()
    expect(page.get_by_role("slider", name=re.compile("Brightness|Contrast"))).to_have_count(0)


def test_without_javascript_the_viewer_shows_both_images_and_links_to_them_full_size(browser, live_server, new_user):
    context = new_context(browser, live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        register(page, new_user)
        prediction_id = upload(page, "chest_xray")
        page.get_by_role("link", name="Larger view, to zoom").click()

        expect(page.get_by_role("button", name="Zoom in")).to_be_hidden()
        expect(page.get_by_role("slider", name="Brightness (level)")).to_be_hidden()
        for name in ("The uploaded", "Heatmap over the image"):
            image = page.get_by_role("img", name=re.compile(name))
            expect(image).to_be_visible()
            assert image_loaded(image)
        full = page.get_by_role("link", name="Open the full-size image")
        assert full.get_attribute("href") == f"/predictions/{prediction_id}/image"
        full.click()
        expect(page).to_have_url(re.compile(rf"/predictions/{prediction_id}/image$"))
    finally:
        context.close()


def test_an_admin_opens_the_viewer_from_a_patients_record_in_one_audited_read(
    page, other_page, new_user, admin_user, live_server, checker
):
    register(other_page, new_user)
    prediction_id = upload(other_page, "chest_xray")
    sign_in(page, admin_user)

    page.goto(f"/admin/predictions/{prediction_id}")
    page.get_by_role("link", name="Larger view, to zoom").click()
    page.wait_for_url(re.compile(rf"/admin/predictions/{prediction_id}/view$"))
    expect(page.get_by_role("main")).to_contain_text(f"uploaded by {new_user.email}")
    assert image_loaded(page.get_by_role("img", name=re.compile("The uploaded")))
    checker.check(page, "admin-viewer")

    with live_server.app.app_context():
        reads = db.session.query(AuditEvent).filter_by(action="prediction.read", target_id=prediction_id).count()
        db.session.remove()
    assert reads == 1
    page.get_by_role("link", name="Back to the result").click()
    expect(page).to_have_url(re.compile(rf"/admin/predictions/{prediction_id}$"))
