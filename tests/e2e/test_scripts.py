"""What the page scripts add (preview, refusals in place, copy, heatmap strength), and the pages without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import RESULT_URL, image_loaded, new_context, register, upload
from tests.support.images import sample_image
from tests.support.jobs import fixture_images, zip_of


def open_upload_page(page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()


def test_upload_previews_the_chosen_image(page, new_user):
    register(page, new_user)
    open_upload_page(page)

    page.get_by_label("Image file").set_input_files(sample_image("breast"))

    preview = page.get_by_role("img", name="Preview of the chosen image")
    expect(preview).to_be_visible()
    assert image_loaded(preview)
    expect(page.get_by_text(sample_image("breast").name)).to_be_visible()


def drop_file(page, zone_selector: str, path) -> None:
    """Drop the file at path on the element, as a file dragged from the desktop arrives (a DataTransfer)."""
    files = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name));
            return transfer;
        }""",
        [path.name, list(path.read_bytes())],
    )
    page.dispatch_event(zone_selector, "dragenter", {"dataTransfer": files})
    expect(page.locator(zone_selector)).to_have_class(re.compile(r"\bis-dragging\b"))
    page.dispatch_event(zone_selector, "drop", {"dataTransfer": files})


def test_an_image_dropped_on_the_upload_page_is_chosen_and_previewed(page, new_user):
    register(page, new_user)
    open_upload_page(page)

    drop_file(page, "#drop-zone", sample_image("breast"))

    expect(page.locator("#drop-zone")).not_to_have_class(re.compile(r"\bis-dragging\b"))
    expect(page.get_by_text(sample_image("breast").name)).to_be_visible()
    assert page.get_by_label("Image file").evaluate("input => input.files[0].name") == sample_image("breast").name


def test_an_archive_dropped_on_the_jobs_page_is_chosen(page, new_user, tmp_path):
    archive = tmp_path / "clinic.zip"
    archive.write_bytes(zip_of(fixture_images(["breast"])[:1]))
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()

    drop_file(page, "#job-drop-zone", archive)

    expect(page.get_by_text(re.compile(r"clinic\.zip \(\d+ KB\)"))).to_be_visible()


def test_refused_upload_is_explained_on_the_upload_page(page, new_user, check_page):
    register(page, new_user)
    open_upload_page(page)
    page.get_by_role("radio", name=re.compile("^Skin lesion")).check()
    page.get_by_label("Image file").set_input_files(
        {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"these are notes, not a photo"}
    )

    expect(page.get_by_text("notes.jpg (1 KB)")).to_be_visible()
    expect(page.get_by_role("img", name="Preview of the chosen image")).to_be_hidden()
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/upload$"))
    expect(page.get_by_role("button", name="Upload")).to_be_enabled()
    check_page("upload-refused")


def test_copy_button_puts_the_token_on_the_clipboard(page, context, live_server, new_user):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    register(page, new_user)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    page.get_by_label("Name", exact=True).fill("clipboard test")

    with page.expect_navigation() as created:
        page.get_by_role("button", name="Create token").click()
    token = re.search(r"msk_\S+", page.locator("output").inner_text())[0]
    page.get_by_role("button", name="Copy token").click()

    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert "no-store" in created.value.headers.get("cache-control", ""), created.value.headers


def test_heatmap_strength_slider_fades_the_heatmap(page, new_user):
    register(page, new_user)
    upload(page, "chest_xray")

    page.get_by_label("Heatmap strength").fill("30")

    heatmap = page.get_by_role("img", name=re.compile("heatmap", re.IGNORECASE))
    expect(heatmap).to_have_css("opacity", "0.3")


@pytest.fixture
def page_without_javascript(browser, live_server):
    context = new_context(browser, live_server.url, java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_upload_and_result_work_without_javascript(page_without_javascript, new_user):
    page = page_without_javascript
    register(page, new_user)

    upload(page, "cervical_cytology", note="no scripts")

    assert RESULT_URL.search(page.url)
    heatmap = page.get_by_role("img", name=re.compile("heatmap", re.IGNORECASE))
    expect(heatmap).to_be_visible()
    assert image_loaded(heatmap)
    expect(page.get_by_label("Heatmap strength")).to_be_hidden()
    expect(page.get_by_role("main")).to_contain_text("no scripts")
