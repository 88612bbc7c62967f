"""The history in the browser: what a visit costs to download, and how long it takes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from db import db
from managers.predictions import PredictionManager
from managers.users import UserManager
from tests.e2e.helpers import image_loaded, register
from tests.support.images import sample_image
from views.results import HISTORY_PAGE_SIZE

HISTORY_BUDGET_BYTES = 600 * 1024
THUMBNAIL_BUDGET_BYTES = 20 * 1024


def large_photo() -> bytes:
    """A skin lesion photo as a phone takes it: a few hundred KB of JPEG (the sample, enlarged, with sensor noise)."""
    photo = Image.open(sample_image("skin_lesion")).convert("RGB").resize((1400, 1050))
    noise = np.random.default_rng(7).integers(-12, 12, (1050, 1400, 3))
    noisy = (np.asarray(photo).astype("int16") + noise).clip(0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", quality=92)
    return out.getvalue()


def seed_history(live_server, email: str, count: int, photo: bytes) -> None:
    with live_server.app.app_context():
        owner = UserManager.get_by_email(email)
        for number in range(count):
            PredictionManager.create(owner, "skin_lesion", photo, note=f"mole {number:02d}")
        db.session.remove()


def visit_history(page) -> dict:
    """Open the history, scroll through it so every lazy thumbnail loads; what came over the wire and how long."""
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto("/history")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    for thumbnail in page.locator(".history-item img").all():
        thumbnail.scroll_into_view_if_needed()
        assert image_loaded(thumbnail)
    page.wait_for_load_state("networkidle")
    sizes = {request.url: request.sizes() for request in finished}
    timing = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dom: n.domContentLoadedEventEnd, load: n.loadEventEnd}; })()"
    )
    return {
        "total": sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes.values()),
        "images": {url: s["responseBodySize"] for url, s in sizes.items() if "/predictions/" in url},
        "timing": timing,
    }


def test_history_of_twenty_results_downloads_at_most_600_kb(page, new_user, live_server, check_page):
    register(page, new_user)
    photo = large_photo()
    seed_history(live_server, new_user.email, HISTORY_PAGE_SIZE, photo)

    first = visit_history(page)
    # A second visit in the same browser: thumbnails come from its private cache, not over the wire again.
    again = visit_history(page)
    print(f"photo {len(photo)} B; history first visit {first['total']} B, {first['timing']}; again {again['total']} B")

    assert len(first["images"]) == HISTORY_PAGE_SIZE, first["images"]
    assert all(0 < size <= THUMBNAIL_BUDGET_BYTES for size in first["images"].values()), first["images"]
    assert first["total"] <= HISTORY_BUDGET_BYTES, first["total"]
    assert again["total"] < first["total"] / 2, (again["total"], first["total"])
    thumbnail = page.locator(".history-item img").first
    assert thumbnail.get_attribute("loading") == "lazy"
    assert thumbnail.get_attribute("width") and thumbnail.get_attribute("height")
    check_page("history-twenty")
