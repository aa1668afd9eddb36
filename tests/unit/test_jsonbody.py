"""Strict JSON bodies: anything PostgreSQL or UTF-8 cannot hold, or that would blow the stack, is a BadJson (→ 400)."""

from __future__ import annotations

import pytest

from coffee_payment.jsonbody import BadJson, parse_json


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 30000 + b"]" * 30000, "nested too deeply"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b'{"a": "x\\u0000y"}', "NUL"),
        (b'{"a\\u0000": 1}', "NUL"),
        (b'{"a": ["\\ud800"]}', "lone surrogates"),
    ],
)
def test_bad_bodies_are_rejected_with_a_reason(body, reason):
    with pytest.raises(BadJson, match=reason):
        parse_json(body)


def test_good_body_parses():
    assert parse_json('{"order_id": "x", "n": [1, 2.5, true, null], "t": "Капучино"}'.encode()) == {
        "order_id": "x",
        "n": [1, 2.5, True, None],
        "t": "Капучино",
    }
