"""Configuration safety: numeric env fallback (``settings._number``) and the system checks (``checks.py``)."""

from __future__ import annotations

import pytest

from coffee_payment.checks import check_timeouts, check_urls
from coffee_payment.settings import _number

pytestmark = pytest.mark.timeout(30)

VAR = "COFFEE_TEST_NUMBER_VAR"


# --- _number ------------------------------------------------------------------------------------------------------


def test_number_unset_is_default(monkeypatch, capsys):
    monkeypatch.delenv(VAR, raising=False)
    assert _number(VAR, 15) == 15
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("raw", "cast", "expected"),
    [
        ("20", int, 20),
        (" 20 ", int, 20),
        ("0", int, 0),
        ("2.5", float, 2.5),
        ("3", float, 3.0),
    ],
)
def test_number_good_values(monkeypatch, capsys, raw, cast, expected):
    monkeypatch.setenv(VAR, raw)
    value = _number(VAR, 7, cast=cast)
    assert value == expected
    assert type(value) is cast
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("raw", "cast"),
    [
        ("", int),
        ("abc", int),
        ("1.5", int),
        ("1e3", int),
        ("-1", int),
        ("-0.5", float),
        ("ten", float),
        ("", float),
        ("nan", float),
    ],
)
def test_number_bad_values_fall_back_with_warning(monkeypatch, capsys, raw, cast):
    monkeypatch.setenv(VAR, raw)
    default = 9 if cast is int else 9.5
    assert _number(VAR, default, cast=cast) == default
    err = capsys.readouterr().err
    assert VAR in err
    assert f"{VAR}={raw!r} " in err
    assert str(default) in err


def test_number_below_custom_minimum(monkeypatch, capsys):
    monkeypatch.setenv(VAR, "1")
    assert _number(VAR, 5, minimum=2) == 5
    assert VAR in capsys.readouterr().err


def test_number_at_minimum_ok(monkeypatch, capsys):
    monkeypatch.setenv(VAR, "2")
    assert _number(VAR, 5, minimum=2) == 2
    assert capsys.readouterr().err == ""


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


def test_check_test_faults_refuses_the_fault_hooks(settings):
    from coffee_payment.checks import check_test_faults

    settings.SERVING_TEST_FAULTS = []
    assert check_test_faults() == []
    settings.SERVING_TEST_FAULTS = ["die_before_make"]
    (error,) = check_test_faults()
    assert error.id == "coffee_payment.E011" and "die_before_make" in error.msg
