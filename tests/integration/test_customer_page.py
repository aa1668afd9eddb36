"""The customer's page in headless Chromium at phone size (390×844), in Russian (default) and English (issue 12):
the whole flow, backing out of the provider's page and continuing, decline → Pay again, expiry, every error page,
accessibility basics. Screenshots go to reports/screenshots/."""

from __future__ import annotations

import secrets
import sqlite3

import pytest
from playwright.sync_api import Page

from tests.integration.browser import chromium_page, contrast, one_chromium, screenshot
from tests.integration.flow import qr_path, scan_with_uuid, wait_makes

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.usefixtures(one_chromium.__name__),
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]

TEXTS = {
    "ru-RU": {
        "lang": "ru",
        "waiting": "Ожидает оплаты",
        "made": "Напиток готовится",
        "pending": "Идёт оплата",
        "declined": "Оплата не прошла",
        "pay": "Оплатить",
        "pay_again": "Оплатить снова",
        "continue": "Продолжить оплату",
        "expired": "Время заказа истекло",
        "price": "150,00\u00a0₽",
    },
    "en-US": {
        "lang": "en",
        "waiting": "Waiting for payment",
        "made": "Your drink is being made",
        "pending": "Payment in progress",
        "declined": "The payment did not go through",
        "pay": "Pay",
        "pay_again": "Pay again",
        "continue": "Continue payment",
        "expired": "This order has expired",
        "price": "₽150.00",
    },
}
LOCALES = pytest.mark.parametrize("locale", list(TEXTS))


def _status_is(page: Page, status: str) -> None:
    page.wait_for_function(f"document.getElementById('status').dataset.status === '{status}'", timeout=15_000)


def _checkout(page: Page, stack, action: str) -> None:
    page.wait_for_url(f"{stack.sandbox_url}/_sandbox/checkout/**")
    page.locator(f"#{action}").click()


def _assert_accessible(page: Page) -> None:
    """aria-live status, AA contrast of the texts, tap targets at least 44 px high."""
    assert page.locator("[aria-live]").count() >= 1
    for selector in ("#status", "#next-step", "#reference", "h1", ".price"):
        assert contrast(page, selector) >= 4.5, selector
    for selector in ("#pay", "#continue"):
        target = page.locator(selector)
        if target.is_visible():
            assert target.bounding_box()["height"] >= 44, selector
            assert contrast(page, selector) >= 4.5, selector


@LOCALES
@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_whole_flow_from_the_qr_link(stack, sandbox, locale, provider):
    texts = TEXTS[locale]
    machine_uuid = "br" + secrets.token_hex(10)
    with chromium_page(locale=locale) as page:
        page.goto(stack.base_url + qr_path(provider, uuid=machine_uuid))
        assert page.locator("html").get_attribute("lang") == texts["lang"]
        assert page.locator("#status").inner_text() == texts["waiting"]
        assert page.locator("#price").inner_text() == texts["price"]
        assert page.locator("#pay").inner_text() == texts["pay"]
        assert "YooKassa" not in page.inner_text("body") and "TBank" not in page.inner_text("body")
        _assert_accessible(page)
        screenshot(page, f"flow-{locale}-{provider}-1-order")
        page.locator("#pay").click()
        _checkout(page, stack, "pay")
        page.wait_for_url(f"{stack.base_url}/v1/order-status-page?**")
        _status_is(page, "make_pending")
        assert page.locator("#status").inner_text() == texts["made"]
        assert page.locator("#pay").is_hidden() and page.locator("#continue").is_hidden()
        _assert_accessible(page)
        screenshot(page, f"flow-{locale}-{provider}-2-made")
    assert len(wait_makes(sandbox, machine_uuid)) == 1


@LOCALES
def test_back_out_of_the_payment_page_then_continue(stack, app, sandbox, locale):
    texts = TEXTS[locale]
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    with chromium_page(locale=locale) as page:
        page.goto(f"{stack.base_url}/v1/order-status-page?order_id={order_id}")
        page.locator("#pay").click()
        page.wait_for_url(f"{stack.sandbox_url}/_sandbox/checkout/**")
        page.go_back()
        page.wait_for_url(f"{stack.base_url}/v1/order-status-page?**")
        _status_is(page, "pending")
        continue_link = page.locator("#continue")
        continue_link.wait_for(state="visible")
        assert page.locator("#status").inner_text() == texts["pending"]
        assert continue_link.inner_text() == texts["continue"]
        _assert_accessible(page)
        screenshot(page, f"back-out-{locale}-1-continue")
        continue_link.click()
        _checkout(page, stack, "pay")
        page.wait_for_url(f"{stack.base_url}/v1/order-status-page?**")
        _status_is(page, "make_pending")
        screenshot(page, f"back-out-{locale}-2-made")
    assert len(wait_makes(sandbox, machine_uuid)) == 1


@LOCALES
def test_decline_then_pay_again(stack, app, sandbox, locale):
    texts = TEXTS[locale]
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    with chromium_page(locale=locale) as page:
        page.goto(f"{stack.base_url}/v1/order-status-page?order_id={order_id}")
        page.locator("#pay").click()
        _checkout(page, stack, "decline")
        page.wait_for_url(f"{stack.base_url}/v1/order-status-page?**")
        _status_is(page, "not_paid")
        page.locator("#pay").wait_for(state="visible")
        assert page.locator("#status").inner_text() == texts["declined"]
        assert page.locator("#pay").inner_text() == texts["pay_again"]
        _assert_accessible(page)
        screenshot(page, f"decline-{locale}-1-pay-again")
        page.locator("#pay").click()
        _checkout(page, stack, "pay")
        page.wait_for_url(f"{stack.base_url}/v1/order-status-page?**")
        _status_is(page, "make_pending")
        screenshot(page, f"decline-{locale}-2-made")
    assert len(wait_makes(sandbox, machine_uuid)) == 1


def _expire(stack, order_id: str) -> None:
    """Move the order's expiry into the past, straight in the stack's SQLite file (ids are stored as 32 hex)."""
    with sqlite3.connect(stack.config.var_dir / "coffee.sqlite3", timeout=20) as db:
        db.execute(
            "UPDATE orders_order SET expires_at = datetime('now', '-1 minute') WHERE id = ?",
            (order_id.replace("-", ""),),
        )


@LOCALES
def test_expiry_is_a_clear_end_and_a_rescan_does_not_revive(stack, app, locale):
    texts = TEXTS[locale]
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    _expire(stack, order_id)
    with chromium_page(locale=locale) as page:
        page.goto(f"{stack.base_url}/v1/order-status-page?order_id={order_id}")
        assert page.locator("#status").inner_text() == texts["expired"]
        assert page.locator("#pay").is_hidden() and page.locator("#continue").is_hidden()
        screenshot(page, f"expired-{locale}-1-page")
        response = page.goto(stack.base_url + qr_path("yookassa", uuid=machine_uuid))
        assert response.status == 410
        assert page.locator("html").get_attribute("lang") == texts["lang"]
        screenshot(page, f"expired-{locale}-2-rescan")
    assert app.get(f"/v1/order-status/{order_id}").json()["expired"] is True


ERROR_PAGES = {
    "repeated-parameter": (lambda: qr_path("yookassa") + "&size=2", 400, {"ru-RU": "«size»", "en-US": "“size”"}),
    "unsafe-uuid": (lambda: qr_path("yookassa", uuid="a/b"), 400, {"ru-RU": "«uuid»", "en-US": "“uuid”"}),
    "unknown-machine": (
        lambda: qr_path("yookassa", deviceUuid="no-such-device"),
        404,
        {"ru-RU": "Неизвестный кофейный автомат", "en-US": "Unknown coffee machine"},
    ),
    "order-not-found": (
        lambda: "/v1/order-status-page?order_id=00000000-0000-4000-8000-000000000000",
        404,
        {"ru-RU": "Заказ не найден", "en-US": "Order not found"},
    ),
    "no-such-page": (lambda: "/v1/no-such-page", 404, {"ru-RU": "Страница не найдена", "en-US": "Page not found"}),
    "legacy-yook-pay-repeated": (
        lambda: qr_path("yookassa").replace("/v1/pay", "/v1/yook-pay") + "&uuid=x2",
        400,
        {"ru-RU": "«uuid»", "en-US": "“uuid”"},
    ),
}


@LOCALES
@pytest.mark.parametrize("name", list(ERROR_PAGES))
def test_error_pages(stack, locale, name):
    make_path, status, expected = ERROR_PAGES[name]
    with chromium_page(locale=locale) as page:
        response = page.goto(stack.base_url + make_path())
        assert response.status == status
        assert page.locator("html").get_attribute("lang") == TEXTS[locale]["lang"]
        assert expected[locale] in page.inner_text("body")
        assert contrast(page, "#error-message") >= 4.5 and contrast(page, "#error-hint") >= 4.5
        screenshot(page, f"error-{locale}-{name}")


@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_legacy_alias_opens_the_same_order(stack, app, provider):
    path = qr_path(provider)
    first = app.get(path)
    legacy = app.get(path.replace("/v1/pay", "/v1/yook-pay" if provider == "yookassa" else "/v1/tbank-pay"))
    assert first.status_code == legacy.status_code == 302
    assert first.headers["location"] == legacy.headers["location"]


def test_core_facts_without_javascript(stack, app):
    order_id, _ = scan_with_uuid(app, "yookassa")
    with chromium_page(javascript=False) as page:
        page.goto(f"{stack.base_url}/v1/order-status-page?order_id={order_id}")
        body = page.inner_text("body")
        assert "Капучино" in body and "150,00\u00a0₽" in body and "Ожидает оплаты" in body and "Sandbox" in body
        screenshot(page, "no-javascript-ru")
