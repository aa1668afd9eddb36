"""Admin login throttling (django-axes), the admin URL prefix and the session lifetime (issue 11, item 6)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import AsyncClient, Client

from coffee_payment.serving.admin_url import admin_url_prefix

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

LOGIN = f"/{settings.ADMIN_URL_PREFIX}/login/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password=PASSWORD, is_staff=True, is_superuser=True)


def _login(client: Client, password: str, username: str = "ops", ip: str = "198.51.100.7"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/"}, REMOTE_ADDR=ip)


def test_the_sixth_wrong_password_in_a_minute_is_refused(staff):
    client = Client()
    for attempt in range(1, 5):
        response = _login(client, f"wrong-{attempt}")
        assert response.status_code == 200 and b"errornote" in response.content, attempt  # the form again
    assert _login(client, "wrong-5").status_code == 429  # the 5th failure locks
    assert _login(client, "wrong-6").status_code == 429  # refused, never checked
    # Locked: even the right password is refused, for this username from any address and from this address.
    assert _login(client, PASSWORD).status_code == 429
    assert _login(Client(), PASSWORD, ip="203.0.113.9").status_code == 429
    assert _login(Client(), "whatever", username="someone-else").status_code == 429


def test_a_right_password_resets_the_count(staff):
    client = Client()
    for attempt in range(4):
        _login(client, f"wrong-{attempt}")
    assert _login(client, PASSWORD).status_code == 302
    for attempt in range(4):
        assert _login(Client(), f"wrong-again-{attempt}").status_code == 200


def test_the_lockout_answers_429_through_the_async_stack(staff):
    """Under gunicorn + Uvicorn the middleware chain runs async (AxesMiddleware.__acall__). async_to_sync from this
    thread runs the views' database work here, on the test's connection."""
    client = AsyncClient()
    data = {"username": "ops", "password": "wrong", "next": "/"}

    async def six_wrong_logins() -> list[int]:
        return [(await client.post(LOGIN, data, REMOTE_ADDR="198.51.100.8")).status_code for _ in range(6)]

    assert async_to_sync(six_wrong_logins)() == [200] * 4 + [429, 429]


def test_session_lifetime_is_the_admin_session_age():
    assert settings.SESSION_COOKIE_AGE == 8 * 3600  # the default (ADMIN_SESSION_AGE_S unset): one working day


def test_the_admin_lives_under_its_prefix(staff):
    assert settings.ADMIN_URL_PREFIX == "admin"
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("raw", "expected", "warned"),
    [
        (None, "admin", False),
        ("", "admin", False),
        ("/", "admin", False),
        ("ops-7f3k", "ops-7f3k", False),
        ("/ops/admin/", "ops/admin", False),
        ("v1", "admin", True),
        ("v1/admin", "admin", True),
        ("static", "admin", True),
        ("health", "admin", True),
        ("a b", "admin", True),
        ("../admin", "admin", True),
        ("adm?in", "admin", True),
        ("ops//admin", "admin", True),
    ],
)
def test_admin_url_prefix(raw, expected, warned):
    warnings = []
    assert admin_url_prefix(raw, warn=lambda *args: warnings.append(args)) == expected
    assert bool(warnings) == warned
    assert all(args[0] == "ADMIN_URL_PREFIX" for args in warnings)
