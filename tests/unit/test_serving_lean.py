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
