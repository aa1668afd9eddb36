"""The system checks (``coffee_payment/checks.py``); the env dialect itself is tested in ``test_env.py``."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from coffee_payment.checks import (
    check_allowed_hosts,
    check_base_url_https,
    check_csrf_trusted_origin,
    check_real_services,
    check_test_faults,
    check_timeouts,
    check_tmetr_size_words,
    check_tmetr_token,
    check_urls,
)

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


# --- one function per check ----------------------------------------------------------------------------------------

PRODUCTION_URLS = {
    "BASE_URL": "https://pay.example",
    "TMETR_API_URL": "https://tmetr.example/",
    "YOOKASSA_API_URL": "https://api.yookassa.ru/v3/",
    "TBANK_API_URL": "https://securepay.tinkoff.ru/v2/",
}


@pytest.fixture
def production(settings):
    """Settings as a correct production deployment has them; each test breaks one thing."""
    for name, value in PRODUCTION_URLS.items():
        setattr(settings, name, value)
    settings.SANDBOX_URL = "http://127.0.0.1:8001"
    settings.TMETR_TOKEN = "jwt"
    settings.CSRF_TRUSTED_ORIGINS = ["https://pay.example"]
    settings.ALLOWED_HOSTS = ["pay.example"]
    settings.TMETR_SIZE_WORDS = ["small", "medium", "big"]
    settings.SERVING_TEST_FAULTS = []
    settings.DEBUG = False
    return settings


CHECKS = [
    check_urls,
    check_tmetr_token,
    check_real_services,
    check_base_url_https,
    check_csrf_trusted_origin,
    check_tmetr_size_words,
    check_allowed_hosts,
    check_test_faults,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_a_correct_production_configuration_passes(production, check):
    assert check() == []


def test_empty_tmetr_token(production):
    production.TMETR_TOKEN = ""
    assert _ids(check_tmetr_token()) == ["coffee_payment.E002"]


@pytest.mark.parametrize("name", ["TMETR_API_URL", "YOOKASSA_API_URL", "TBANK_API_URL"])
def test_sandbox_urls_are_flagged_for_production(production, name):
    setattr(production, name, "http://127.0.0.1:8001/service/")
    problems = check_real_services()
    assert _ids(problems) == ["coffee_payment.W001"] and name in problems[0].msg


@pytest.mark.parametrize("name", ["TMETR_API_URL", "YOOKASSA_API_URL", "TBANK_API_URL"])
def test_plain_http_services_are_errors(production, name):
    setattr(production, name, "http://service.example/")
    problems = check_real_services()
    assert _ids(problems) == ["coffee_payment.E003"] and name in problems[0].msg


def test_base_url_without_https(production):
    production.BASE_URL = "http://pay.example"
    production.CSRF_TRUSTED_ORIGINS = ["http://pay.example"]
    assert _ids(check_base_url_https()) == ["coffee_payment.W002"]
    assert check_csrf_trusted_origin() == []


def test_csrf_trusted_origins_must_hold_the_public_origin(production):
    production.CSRF_TRUSTED_ORIGINS = ["https://other.example"]
    problems = check_csrf_trusted_origin()
    assert _ids(problems) == ["coffee_payment.W003"] and "https://pay.example" in problems[0].msg


def test_check_size_words(production):
    production.TMETR_SIZE_WORDS = ["small", "big"]
    assert _ids(check_tmetr_size_words()) == ["coffee_payment.E005"]


def test_empty_allowed_hosts_only_matters_without_debug(production):
    production.ALLOWED_HOSTS = []
    assert _ids(check_allowed_hosts()) == ["coffee_payment.E006"]
    production.DEBUG = True
    assert check_allowed_hosts() == []


def test_test_faults_are_refused(production):
    production.SERVING_TEST_FAULTS = ["die_before_make"]
    problems = check_test_faults()
    assert _ids(problems) == ["coffee_payment.E011"] and "die_before_make" in problems[0].msg


def test_deploy_checks_are_registered_and_catch_the_sandbox_defaults(settings):
    """``manage.py check --deploy`` runs them: the sandbox URLs of a dev configuration are flagged."""
    settings.TMETR_API_URL = settings.SANDBOX_URL + "/tmetr/"
    ids = {problem.id for problem in run_checks(include_deployment_checks=True)}
    assert "coffee_payment.W001" in ids
    assert "coffee_payment.W001" not in {problem.id for problem in run_checks()}
