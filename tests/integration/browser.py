"""Headless Chromium (Debian's ``chromium``) for the integration tests: a page at a given size and language,
screenshots kept under ``reports/screenshots`` (gitignored) for a reviewer to look at.

A module that opens many pages uses the ``one_chromium`` fixture: one Chromium process for the module, each
``chromium_page`` a new browser context in it (its own cookies, storage and cache, as a fresh profile has) instead
of a new Chromium launched per page."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


_shared: list[Browser] = []  # the module's Chromium while a ``one_chromium`` fixture is active


def _chromium() -> str:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required (noxfile installs it: apt-get install chromium)"
    return chromium


@pytest.fixture(scope="module")
def one_chromium() -> Iterator[None]:
    """One headless Chromium for the pages of a module (import it into the module, autouse or named by tests)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        _shared.append(browser)
        try:
            yield
        finally:
            _shared.remove(browser)
            browser.close()


@contextmanager
def chromium_page(
    *, locale: str = "ru-RU", viewport: dict[str, int] = PHONE, javascript: bool = True
) -> Iterator[Page]:
    """A fresh headless Chromium context (``locale`` sets ``Accept-Language``); closed on exit. In the module's
    Chromium (``one_chromium``) when there is one, else in a Chromium of its own with a new profile."""
    if _shared:
        context = _shared[-1].new_context(viewport=viewport, locale=locale, java_script_enabled=javascript)
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
        return
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=_chromium(),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=viewport,
            locale=locale,
            java_script_enabled=javascript,
        )
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``reports/screenshots/<name>.png``; returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# WCAG 2.x contrast ratio of an element's text against the first opaque background up its ancestors.
CONTRAST_JS = """
(el) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  let bg = null;
  for (let n = el; n && !bg; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) bg = c.slice(0, 3);
  }
  bg = bg || [255, 255, 255];
  const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(bg);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
"""


def contrast(page: Page, selector: str) -> float:
    """The contrast ratio of ``selector``'s text (AA asks ≥ 4.5 for normal text)."""
    return page.locator(selector).first.evaluate(CONTRAST_JS)
