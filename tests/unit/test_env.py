"""The one env dialect (``coffee_payment/env.py``) and its use by Django settings: one table per kind of value.

The GUNICORN_* knobs run the same parsers through ``serving/env.py`` (``test_serving_env.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coffee_payment.env import parse_bool, parse_choice, parse_int, parse_number

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
VAR = "COFFEE_TEST_VAR"
# Not a base-10 integer, for every integer variable.
BAD_INTEGERS = ["", " ", "-1", "+5", " 4", "4 ", "'4'", "0x10", "0o10", "4.0", "1e3", "٤", "four", "4_000"]
# Not a plain decimal, for every number variable.
BAD_NUMBERS = ["", " 2", "-0.5", "+1", "1e3", "nan", "inf", ".5", "5.", "1_0", "ten", "0x1"]


def _parse(parser, raw: str | None, **kwargs):
    warnings: list[str] = []
    environ = {} if raw is None else {VAR: raw}
    return parser(environ, VAR, warn=warnings.append, **kwargs), warnings


@pytest.mark.parametrize("parser", [parse_int, parse_number])
def test_unset_is_the_default_silently(parser):
    assert _parse(parser, None, default=7, minimum=1) == (7, [])


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("20", 20), ("08", 8), ("99999999999999999999", 10**20 - 1)])
def test_integers(raw, expected):
    value, warnings = _parse(parse_int, raw, default=7, minimum=0)
    assert (value, warnings) == (expected, [])
    assert type(value) is int


@pytest.mark.parametrize("raw", BAD_INTEGERS)
def test_bad_integers_fall_back_with_one_warning(raw):
    assert _parse(parse_int, raw, default=7, minimum=0) == (7, [f"{VAR}={raw!r} is not a base-10 integer; using 7"])


@pytest.mark.parametrize(
    ("raw", "kwargs", "problem"),
    [("1", {"minimum": 2}, "is out of range >= 2"), ("11", {"minimum": 2, "maximum": 10}, "is out of range 2..10")],
)
def test_integers_out_of_range(raw, kwargs, problem):
    assert _parse(parse_int, raw, default=5, **kwargs) == (5, [f"{VAR}={raw!r} {problem}; using 5"])


@pytest.mark.parametrize(("raw", "expected"), [("0", 0.0), ("3", 3.0), ("2.5", 2.5), ("0.1", 0.1)])
def test_numbers(raw, expected):
    value, warnings = _parse(parse_number, raw, default=9.5, minimum=0.0)
    assert (value, warnings) == (expected, [])
    assert type(value) is float


@pytest.mark.parametrize("raw", BAD_NUMBERS)
def test_bad_numbers_fall_back_with_one_warning(raw):
    value, warnings = _parse(parse_number, raw, default=9.5, minimum=0.0)
    assert (value, warnings) == (9.5, [f"{VAR}={raw!r} is not a decimal number; using 9.5"])


def test_number_below_its_minimum():
    assert _parse(parse_number, "0.05", default=3.0, minimum=0.1) == (
        3.0,
        [f"{VAR}='0.05' is out of range >= 0.1; using 3.0"],
    )


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "Yes", "on"])
def test_true_words(raw):
    assert _parse(parse_bool, raw, default=False) == (True, [])


@pytest.mark.parametrize("raw", ["0", "false", "False", "NO", "off"])
def test_false_words(raw):
    assert _parse(parse_bool, raw, default=True) == (False, [])


@pytest.mark.parametrize("raw", ["", " 1", "2", "y", "enabled", "truthy"])
def test_bad_booleans_fall_back_with_one_warning(raw):
    value, warnings = _parse(parse_bool, raw, default=True)
    assert value is True
    assert warnings == [f"{VAR}={raw!r} is not a boolean (1/0, true/false, yes/no, on/off); using 1"]


def test_choices():
    assert _parse(parse_choice, "WARNING", default="info", choices=("info", "warning")) == ("warning", [])
    value, warnings = _parse(parse_choice, "loud", default="info", choices=("info", "warning"))
    assert (value, warnings) == ("info", [f"{VAR}='loud' is not one of info, warning; using info"])


def _settings(environ: dict[str, str]) -> tuple[list[str], str]:
    """Import the real settings in a fresh interpreter with ``environ``; the printed values and stderr."""
    names = ["DEBUG", "ORDER_EXPIRATION_MINUTES", "SESSION_COOKIE_AGE", "PAYMENT_REFRESH_INTERVAL_S", "LOG_LEVEL"]
    code = f"import coffee_payment.settings as s; print(repr([getattr(s, n) for n in {names!r}]))"
    env = {key: value for key, value in os.environ.items() if key not in names and key != "DJANGO_SETTINGS_MODULE"}
    env.update({"SECRET_KEY": "x" * 50, "VAR_DIR": str(ROOT / "var"), **environ})
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


@pytest.mark.timeout(60)
def test_settings_read_the_same_dialect():
    values, stderr = _settings(
        {
            "DEBUG": "true",
            "ORDER_EXPIRATION_MINUTES": "+5",
            "ADMIN_SESSION_AGE_S": "1800",
            "PAYMENT_REFRESH_INTERVAL_S": "2.5",
            "LOG_LEVEL": "warning",
        }
    )
    assert values == repr([True, 15, 1800, 2.5, "WARNING"])
    assert stderr.splitlines() == ["WARNING: ORDER_EXPIRATION_MINUTES='+5' is not a base-10 integer; using 15"]
