"""Money is integer kopecks everywhere; this module is the only place that converts to and from provider text."""

from __future__ import annotations

import re

_AMOUNT_RE = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")


def format_rubles(kopecks: int) -> str:
    """``15000`` → ``"150.00"`` (YooKassa ``amount.value``). Raises ValueError for negative or non-int input."""
    if not isinstance(kopecks, int) or isinstance(kopecks, bool) or kopecks < 0:
        raise ValueError(f"amount must be a non-negative int of kopecks, got {kopecks!r}")
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def parse_rubles(value: str) -> int:
    """``"150.00"``/``"150.5"``/``"150"`` → kopecks (``15000``/``15050``/``15000``); ValueError for anything else
    (floats, signs, exponents, more than two decimals)."""
    if not isinstance(value, str):
        raise ValueError(f"amount must be a decimal string, got {value!r}")
    match = _AMOUNT_RE.fullmatch(value)
    if not match:
        raise ValueError(f"not a ruble amount: {value!r}")
    rubles, fraction = match.groups()
    return int(rubles) * 100 + int((fraction or "0").ljust(2, "0"))
