"""Integer kopecks ↔ provider ruble text (docs/domain.md §5 rule 7)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffee_payment.payments.money import format_rubles, parse_rubles

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("kopecks", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (99, "0.99"),
        (100, "1.00"),
        (15000, "150.00"),
        (15050, "150.50"),
        (15099, "150.99"),
        (123456789, "1234567.89"),
    ],
)
def test_format_rubles(kopecks, text):
    assert format_rubles(kopecks) == text


@pytest.mark.parametrize("bad", [1.0, 150.5, -1, -100, True, False, "100", None, Decimal(1)])
def test_format_rubles_rejects(bad):
    with pytest.raises(ValueError):
        format_rubles(bad)


@pytest.mark.parametrize(
    ("text", "kopecks"),
    [
        ("0", 0),
        ("0.00", 0),
        ("0.01", 1),
        ("0.99", 99),
        ("1", 100),
        ("1.00", 100),
        ("150", 15000),
        ("150.00", 15000),
        ("150.5", 15050),
        ("150.50", 15050),
        ("150.05", 15005),
    ],
)
def test_parse_rubles(text, kopecks):
    assert parse_rubles(text) == kopecks


@pytest.mark.parametrize(
    "bad",
    [
        "1.234",
        "-1",
        "+1",
        "1e3",
        "1E3",
        "",
        " ",
        "1.",
        ".5",
        "1,00",
        "abc",
        "1.2.3",
        " 1.00",
        "1.00 ",
        "1.00\n",
        "١٢",
        "nan",
        "inf",
        "0x10",
        "1_000",
        1.5,
        100,
        None,
        True,
        b"1.00",
    ],
)
def test_parse_rubles_rejects(bad):
    with pytest.raises(ValueError):
        parse_rubles(bad)


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=10**14 - 1))
def test_round_trip(kopecks):
    text = format_rubles(kopecks)
    assert parse_rubles(text) == kopecks
    assert Decimal(text) * 100 == kopecks
    assert len(text.split(".")[1]) == 2


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=99))
def test_parse_matches_decimal(rubles, cents):
    text = f"{rubles}.{cents:02d}"
    assert parse_rubles(text) == int(Decimal(text) * 100)
    assert format_rubles(parse_rubles(text)) == text
