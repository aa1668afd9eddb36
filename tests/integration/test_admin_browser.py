"""The admin in headless Chromium at 1280 px (issue 12): the order lists fit without horizontal scrolling, the
"needs attention" list shows the orders waiting for staff; the serve banner suggests a login only without one."""

from __future__ import annotations

import sqlite3

import pytest

from devtools.banner import admin_line
from devtools.stack import run_manage
from tests.integration.browser import chromium_page, one_chromium, screenshot
from tests.integration.flow import scan

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.usefixtures(one_chromium.__name__),
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]

DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "admin-browser-test-only-1"
OVERFLOW_JS = """() => {
  const doc = document.documentElement, table = document.querySelector('#result_list');
  const box = table ? table.closest('.results') || table.parentElement : null;
  return {doc: [doc.scrollWidth, doc.clientWidth], table: box ? [box.scrollWidth, box.clientWidth] : null};
}"""


def _set_status(stack, order_id: str, status: str) -> None:
    with sqlite3.connect(stack.config.var_dir / "coffee.sqlite3", timeout=20) as db:
        db.execute("UPDATE orders_order SET status = ? WHERE id = ?", (status, order_id.replace("-", "")))


def _reference(order_id: str) -> str:
    hex_id = order_id.replace("-", "").upper()
    return f"{hex_id[:4]}-{hex_id[4:8]}"


@pytest.mark.parametrize("locale", ["ru-RU", "en-US"])
def test_order_lists_fit_1280_px_and_needs_attention_lists_the_right_orders(stack, app, locale):
    if "create a login" in admin_line(f"{stack.base_url}/admin/", stack.env):
        # The banner suggests a login only while there is none (issue 12).
        env = {**stack.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
        run_manage("createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com", env=env)
    assert admin_line(f"{stack.base_url}/admin/", stack.env) == f"Admin: {stack.base_url}/admin/"
    orders = {
        status: scan(app, "yookassa", drinkName="Капучино с карамельным сиропом")
        for status in ("make_failed", "make_unknown", "manual_make", "successful", "created")
    }
    for status, order_id in orders.items():
        _set_status(stack, order_id, status)
    with chromium_page(locale=locale, viewport=DESKTOP) as page:
        page.goto(f"{stack.base_url}/admin/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{stack.base_url}/admin/")
        for name, path in (("orders", "/admin/orders/order/"), ("attention", "/admin/orders/orderneedingattention/")):
            page.goto(stack.base_url + path)
            sizes = page.evaluate(OVERFLOW_JS)
            screenshot(page, f"admin-{locale}-{name}-1280")
            assert sizes["doc"][0] <= sizes["doc"][1], sizes
            assert sizes["table"] and sizes["table"][0] <= sizes["table"][1], sizes
            assert "150,00\u00a0₽" in page.inner_text("#result_list") or "₽150.00" in page.inner_text("#result_list")
        listed = page.inner_text("#result_list")
        for status, order_id in orders.items():
            assert (_reference(order_id) in listed) == (status in ("make_failed", "make_unknown", "manual_make"))
