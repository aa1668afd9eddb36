"""The status page driven by headless Chromium (Debian's ``chromium``): Pay → sandbox checkout → back to the page
showing the drink being made."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from playwright.sync_api import sync_playwright

from tests.integration.browser import CHROMIUM_ARGS
from tests.integration.flow import scan_with_uuid, wait_makes

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)  # the flow itself runs on both backends elsewhere
@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_pay_from_the_status_page(stack, app, sandbox, provider, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required (noxfile installs it: apt-get install chromium)"
    order_id, machine_uuid = scan_with_uuid(app, provider)
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium, args=CHROMIUM_ARGS, headless=True, viewport={"width": 390, "height": 844}
        )
        try:
            page = browser.new_page()
            page.goto(f"{stack.base_url}/v1/order-status-page?order_id={order_id}")
            assert page.locator("#status").inner_text() == "Waiting for payment"  # Chromium asks for en-US
            page.locator("#pay").click()
            page.wait_for_url(f"{stack.sandbox_url}/_sandbox/checkout/**", timeout=15_000)
            page.locator("#pay").click()
            page.wait_for_url(f"{stack.base_url}/v1/order-status-page?order_id={order_id}", timeout=15_000)
            page.wait_for_function(
                "document.getElementById('status').dataset.status === 'make_pending'", timeout=15_000
            )
            assert page.locator("#status").inner_text() == "Your drink is being made"
            assert page.locator("#pay").is_hidden()
            page.screenshot(path=f"/tmp/status-{provider}.png")
        finally:
            browser.close()
    assert len(wait_makes(sandbox, machine_uuid)) == 1
