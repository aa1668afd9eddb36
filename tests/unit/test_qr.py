"""QR link parameters of GET /v1/pay (docs/domain.md §1)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from coffee_payment.orders.qr import QrError, QrParams, parse_qr

pytestmark = pytest.mark.timeout(30)

REAL_LINK = (
    "/v1/pay?deviceUuid=3f0c2a9e-5b1d-4c8e-9a77-0d6f2b1e4c55&drinkNo=7c9e6679f4254a0b8d1e2f3a4b5c6d7e&size=1"
    "&random=k3J9qL&ts=1764412800&salt=9b2f4e6a8c0d1e3f5a7b9c1d3e5f7a9b"
    "&drinkName=%D0%9A%D0%B0%D0%BF%D1%83%D1%87%D0%B8%D0%BD%D0%BE&uuid=20261129104512a1b2c3-4d5e-f6a7"
)


def _query(**changes: str | None) -> dict[str, str]:
    query = dict(parse_qsl(urlsplit(REAL_LINK).query, keep_blank_values=True))
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return query


def test_real_link():
    params = parse_qr(_query())
    assert params == QrParams(
        device_uuid="3f0c2a9e-5b1d-4c8e-9a77-0d6f2b1e4c55",
        drink_no="7c9e6679f4254a0b8d1e2f3a4b5c6d7e",
        drink_name="Капучино",
        size=1,
        machine_uuid="20261129104512a1b2c3-4d5e-f6a7",
        ts="1764412800",
        random="k3J9qL",
        salt="9b2f4e6a8c0d1e3f5a7b9c1d3e5f7a9b",
    )


def test_signature_params_optional():
    params = parse_qr(_query(ts=None, random=None, salt=None))
    assert (params.ts, params.random, params.salt) == ("", "", "")


@pytest.mark.parametrize("size", ["0", "1", "2"])
def test_sizes(size):
    assert parse_qr(_query(size=size)).size == int(size)


@pytest.mark.parametrize("size", ["3", "-1", "01", "1.0", "one", "10", "²", "١"])
def test_bad_size(size):
    with pytest.raises(QrError, match="size"):
        parse_qr(_query(size=size))


@pytest.mark.parametrize("name", ["deviceUuid", "drinkNo", "drinkName", "size", "uuid"])
def test_missing_parameter(name):
    with pytest.raises(QrError, match=name):
        parse_qr(_query(**{name: None}))


@pytest.mark.parametrize("name", ["deviceUuid", "drinkNo", "drinkName", "size", "uuid"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_parameter(name, blank):
    with pytest.raises(QrError, match=name):
        parse_qr(_query(**{name: blank}))


@pytest.mark.parametrize("value", ["has space", "a/b", "x" * 65, "abc;drop", "ü"])
@pytest.mark.parametrize("name", ["deviceUuid", "drinkNo"])
def test_bad_ids(name, value):
    with pytest.raises(QrError, match=name):
        parse_qr(_query(**{name: value}))


def test_ids_at_64_chars_ok():
    params = parse_qr(_query(deviceUuid="a" * 64, drinkNo="b" * 64))
    assert params.device_uuid == "a" * 64


def test_uuid_255_ok_256_rejected():
    assert parse_qr(_query(uuid="u" * 255)).machine_uuid == "u" * 255
    with pytest.raises(QrError, match="uuid"):
        parse_qr(_query(uuid="u" * 256))


@pytest.mark.parametrize("value", ["2026 1129", "a\tb", "a\nb", "зака́з"])
def test_uuid_with_spaces_or_non_ascii_rejected(value):
    with pytest.raises(QrError, match="uuid"):
        parse_qr(_query(uuid=value))


def test_surrounding_spaces_are_stripped():
    params = parse_qr(_query(uuid="  abc-1  ", deviceUuid=" dev-1 "))
    assert params.machine_uuid == "abc-1"
    assert params.device_uuid == "dev-1"


def test_drink_name_with_spaces_ok():
    assert parse_qr(_query(drinkName="Капучино большой")).drink_name == "Капучино большой"


@pytest.mark.parametrize("value", ["x" * 201, "bad\x00name", "a\nb"])
def test_bad_drink_name(value):
    with pytest.raises(QrError, match="drinkName"):
        parse_qr(_query(drinkName=value))


@pytest.mark.parametrize("name", ["ts", "random", "salt"])
@pytest.mark.parametrize("value", ["x" * 129, "has space", "\x01"])
def test_bad_signature_params(name, value):
    with pytest.raises(QrError, match=name):
        parse_qr(_query(**{name: value}))


@pytest.mark.parametrize("name", ["ts", "random", "salt"])
def test_signature_params_stored_not_verified(name):
    params = parse_qr(_query(**{name: "anything-goes_123"}))
    assert getattr(params, name) == "anything-goes_123"


def test_error_is_value_error():
    assert issubclass(QrError, ValueError)


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("ts", "qr_ts"),
        ("random", "qr_random"),
        ("salt", "qr_salt"),
        ("uuid", "machine_uuid"),
        ("drinkName", "drink_name"),
        ("drinkNo", "drink_no"),
    ],
)
def test_accepted_values_fit_the_order_columns(param, field):
    """Whatever parse_qr accepts must fit the Order column it is stored in (PostgreSQL raises DataError on
    overflow, which would be a 500 on /v1/pay)."""
    from coffee_payment.orders.models import Order

    max_length = Order._meta.get_field(field).max_length
    longest = None
    for length in range(1, 400):
        try:
            parse_qr(_query(**{param: "a" * length}))
        except QrError:
            continue
        longest = length
    assert longest is not None
    assert longest <= max_length, f"{param} accepts {longest} chars but Order.{field} holds {max_length}"


@pytest.mark.parametrize("name", ["ts", "random", "salt"])
def test_signature_param_with_trailing_newline_rejected(name):
    # "printable characters" only: a regex anchored with `$` also matches before a trailing "\n"
    with pytest.raises(QrError, match=name):
        parse_qr(_query(**{name: "abc\n"}))


# --- issue 12: an ambiguous query is refused (docs/domain.md §1) ------------------------------------------------------


def _querydict(query: str):
    from django.http import QueryDict

    return QueryDict(query)


@pytest.mark.parametrize("name", ["deviceUuid", "drinkNo", "drinkName", "size", "uuid", "ts", "salt", "unknownExtra"])
def test_repeated_parameter_is_refused_naming_it(name):
    query = urlsplit(REAL_LINK).query + f"&{name}=again&{name}=and-again"
    with pytest.raises(QrError, match=name):
        parse_qr(_querydict(query))


def test_real_link_as_querydict_is_accepted():
    assert parse_qr(_querydict(urlsplit(REAL_LINK).query)).machine_uuid == "20261129104512a1b2c3-4d5e-f6a7"


@pytest.mark.parametrize(
    "uuid", ["a/b", "a?b", "a#b", "a%2Fb", "a%b", "a\\b", "a b", "a\tb", "a\x7fb", "a\x00b", ".", "..", "ü", 'a"b']
)
def test_path_unsafe_uuid_is_refused(uuid):
    with pytest.raises(QrError, match="uuid"):
        parse_qr(_query(uuid=uuid))


@pytest.mark.parametrize(
    "uuid", ["20261129104512a1b2c3-4d5e-f6a7", "A.b_c~d", "x:1@2", "a!$&'()*+,;=b", "...", "x" * 255]
)
def test_path_safe_uuid_is_accepted(uuid):
    assert parse_qr(_query(uuid=uuid)).machine_uuid == uuid
