"""Every table fits a phone: at 390 px no column and no button is off the screen, and nothing scrolls sideways."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import PHONE, register, sign_in, upload

# Every cell, header, button and link of every table on the page that lies (partly) outside the screen's width.
OFF_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const table of document.querySelectorAll('table')) {
    for (const element of table.querySelectorAll('tbody th, tbody td, button, a')) {
      const box = element.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      const name = `${element.tagName} "${element.textContent.trim().slice(0, 40)}"`;
      if (box.left < 0 || box.right > width + 0.5) out.push(`${name} ${box.left}-${box.right}`);
    }
    const scroller = table.parentElement;
    if (scroller.scrollWidth > scroller.clientWidth + 1) out.push(`table scrolls: ${scroller.scrollWidth} px`);
  }
  return {tables: document.querySelectorAll('table').length, out, page: document.documentElement.scrollWidth};
}"""


def assert_tables_fit(page, path: str) -> None:
    page.goto(path)
    page.set_viewport_size(PHONE)
    found = page.evaluate(OFF_SCREEN)
    assert found["tables"] >= 1, f"no table on {path}"
    assert not found["out"], f"{path} at {PHONE['width']} px: {found['out']}"
    assert found["page"] <= PHONE["width"], f"{path} is {found['page']} px wide"


def test_every_table_fits_a_phone(page, other_page, new_user, admin_user, check_page):
    register(other_page, new_user)
    upload(other_page, "skin_lesion")

    sign_in(page, admin_user)
    page.goto("/account")
    page.get_by_label("Name", exact=True).fill("a backup script with a long name")
    page.get_by_role("button", name="Create token").click()
    page.goto("/account")
    expect(page.get_by_role("button", name="Revoke token a backup script with a long name")).to_be_visible()

    for path in ("/account", "/admin/users", "/admin/predictions", "/admin/audit"):
        assert_tables_fit(page, path)
        page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/account")
    check_page("account-with-token")
    page.goto("/admin/predictions")
    check_page("admin-predictions-phone")
    page.goto("/admin/audit")
    check_page("admin-audit-phone")
