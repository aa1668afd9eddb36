"""The lean /v1/ handler: Host validation and Django's security headers, with the middleware's own settings."""

from __future__ import annotations

import httpx
import pytest
from django.test import override_settings

from coffee_payment.serving.lean import LeanASGIHandler

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def get(path: str, host: str = "localhost", **headers: str) -> httpx.Response:
    """GET ``path`` through a LeanASGIHandler built under the current settings (middleware read them at init)."""
    transport = httpx.ASGITransport(app=LeanASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        return await client.get(path, headers=headers)


async def test_security_headers_on_customer_paths() -> None:
    response = await get("/v1/no-such-path")
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # plain http


async def test_host_outside_allowed_hosts_is_a_400() -> None:
    response = await get("/v1/no-such-path", host="evil.example")
    assert response.status_code == 400


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_SSL_HOST="pay.example.com")
async def test_ssl_redirect_honours_secure_ssl_host() -> None:
    response = await get("/v1/no-such-path?x=1")
    assert response.status_code == 301
    assert response.headers["location"] == "https://pay.example.com/v1/no-such-path?x=1"


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_HSTS_SECONDS=3600,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_HSTS_PRELOAD=True,
)
async def test_hsts_with_every_secure_hsts_option_behind_a_tls_proxy() -> None:
    response = await get("/v1/no-such-path", **{"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"] == "max-age=3600; includeSubDomains; preload"


async def test_language_is_russian_by_default_and_english_on_request() -> None:
    """The lean handler resolves the language itself (no LocaleMiddleware there): ru by default, en on request."""
    ru = await get("/v1/no-such-path")
    assert ru.headers["content-language"] == "ru" and "accept-language" in ru.headers["vary"].lower()
    assert '<html lang="ru">' in ru.text and "Страница не найдена" in ru.text
    en = await get("/v1/no-such-path", **{"Accept-Language": "en-US,en;q=0.9"})
    assert en.headers["content-language"] == "en"
    assert '<html lang="en">' in en.text and "Page not found" in en.text
    fr = await get("/v1/no-such-path", **{"Accept-Language": "fr-FR"})
    assert fr.headers["content-language"] == "ru"


async def _thread_hops(path: str, monkeypatch: pytest.MonkeyPatch, **headers: str) -> int:
    """How many sync_to_async calls one request through the lean handler makes."""
    import asgiref.sync

    calls = []
    original = asgiref.sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__name__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting)
    await get(path, **headers)
    monkeypatch.undo()
    return len(calls)


async def test_language_resolution_adds_no_thread_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: the language is resolved inline on the event loop; the request makes as many thread hops with the
    locale middleware as without it."""
    from django.conf import settings

    with_locale = await _thread_hops("/v1/no-such-path", monkeypatch, **{"Accept-Language": "en"})
    without = [m for m in settings.LEAN_MIDDLEWARE if not m.endswith("LeanLocaleMiddleware")]
    with override_settings(LEAN_MIDDLEWARE=without):
        without_locale = await _thread_hops("/v1/no-such-path", monkeypatch, **{"Accept-Language": "en"})
    assert with_locale == without_locale
