"""The system checks (``coffee_payment/checks.py``); the env dialect itself is tested in ``test_env.py``."""

from __future__ import annotations

import pytest

from coffee_payment.checks import check_timeouts, check_urls

pytestmark = pytest.mark.timeout(30)


# --- check_urls -----------------------------------------------------------------------------------------------------


def _ids(problems) -> list[str]:
    return [p.id for p in problems]


def test_check_urls_clean_with_defaults(settings):
    settings.BASE_URL = "https://pay.example"
    assert check_urls() == []


@pytest.mark.parametrize("value", ["/relative", "pay.example", "ftp://pay.example", "https://", ""])
def test_check_urls_relative_base_url(settings, value):
    settings.BASE_URL = value
    problems = check_urls()
    assert _ids(problems) == ["coffee_payment.E001"]
    assert "BASE_URL" in problems[0].msg


@pytest.mark.parametrize("name", ["TMETR_API_URL", "YOOKASSA_API_URL", "TBANK_API_URL"])
def test_check_urls_service_urls(settings, name):
    settings.BASE_URL = "https://pay.example"
    setattr(settings, name, "tmetr.example/api")
    problems = check_urls()
    assert _ids(problems) == ["coffee_payment.E001"]
    assert name in problems[0].msg


# --- check_timeouts ---------------------------------------------------------------------------------------------------


def test_check_timeouts_ok(settings, monkeypatch):
    monkeypatch.setenv("GUNICORN_TIMEOUT", "30")
    settings.PROVIDER_CONNECT_TIMEOUT_S, settings.PROVIDER_READ_TIMEOUT_S = 3.0, 10.0
    settings.TMETR_CONNECT_TIMEOUT_S, settings.TMETR_READ_TIMEOUT_S = 3.0, 5.0
    settings.TMETR_SIZE_WORDS = ["small", "medium", "big"]
    assert check_timeouts() == []


def test_check_timeouts_gunicorn_smaller_than_budgets(settings, monkeypatch):
    monkeypatch.setenv("GUNICORN_TIMEOUT", "5")
    settings.PROVIDER_CONNECT_TIMEOUT_S, settings.PROVIDER_READ_TIMEOUT_S = 3.0, 10.0
    settings.TMETR_CONNECT_TIMEOUT_S, settings.TMETR_READ_TIMEOUT_S = 3.0, 5.0
    settings.TMETR_SIZE_WORDS = ["small", "medium", "big"]
    problems = check_timeouts()
    assert _ids(problems) == ["coffee_payment.E004", "coffee_payment.E004"]
    assert "provider" in problems[0].msg and "Tmetr" in problems[1].msg


def test_check_timeouts_only_provider_too_long(settings, monkeypatch):
    monkeypatch.setenv("GUNICORN_TIMEOUT", "12")
    settings.PROVIDER_CONNECT_TIMEOUT_S, settings.PROVIDER_READ_TIMEOUT_S = 3.0, 10.0
    settings.TMETR_CONNECT_TIMEOUT_S, settings.TMETR_READ_TIMEOUT_S = 3.0, 5.0
    settings.TMETR_SIZE_WORDS = ["small", "medium", "big"]
    problems = check_timeouts()
    assert _ids(problems) == ["coffee_payment.E004"]
    assert "provider" in problems[0].msg


def test_check_timeouts_equal_is_error(settings, monkeypatch):
    monkeypatch.setenv("GUNICORN_TIMEOUT", "8")
    settings.PROVIDER_CONNECT_TIMEOUT_S, settings.PROVIDER_READ_TIMEOUT_S = 1.0, 2.0
    settings.TMETR_CONNECT_TIMEOUT_S, settings.TMETR_READ_TIMEOUT_S = 3.0, 5.0
    settings.TMETR_SIZE_WORDS = ["small", "medium", "big"]
    assert _ids(check_timeouts()) == ["coffee_payment.E004"]


def test_check_timeouts_size_words(settings, monkeypatch):
    monkeypatch.setenv("GUNICORN_TIMEOUT", "30")
    settings.PROVIDER_CONNECT_TIMEOUT_S, settings.PROVIDER_READ_TIMEOUT_S = 3.0, 10.0
    settings.TMETR_CONNECT_TIMEOUT_S, settings.TMETR_READ_TIMEOUT_S = 3.0, 5.0
    settings.TMETR_SIZE_WORDS = ["small", "big"]
    assert _ids(check_timeouts()) == ["coffee_payment.E005"]
