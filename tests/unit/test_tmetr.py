"""Tmetr client: price, heartbeat, make command and error mapping (docs/domain.md §2) on a mock transport."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from coffee_payment.integrations.tmetr import (
    MakeCommand,
    TmetrClient,
    TmetrRejected,
    TmetrUnauthorized,
    TmetrUnavailable,
)
from tests.unit.mock_http import Recorder, run

pytestmark = pytest.mark.timeout(30)


def _client(handler) -> TmetrClient:
    return TmetrClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        base_url="https://tmetr.test",
        token="jwt-token",
        connect_timeout=3,
        read_timeout=5,
    )


def _json(data: Any, status: int = 200):
    return lambda request: httpx.Response(status, json=data)


# --- price ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "word"), [(0, "SMALL"), (1, "MEDIUM"), (2, "BIG")])
def test_drink_price(size, word):
    rec = Recorder(_json({"price": 15000, "name": "Капучино"}))
    price = run(_client(rec).drink_price(device_id="dev-1", drink_no="d7", size=size))
    assert price == 15000
    request = rec.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://tmetr.test/api/ui/v1/static/drink"
    assert request.headers["Authorization"] == "Bearer jwt-token"
    assert rec.body() == {"deviceId": "dev-1", "drinkIdAtDevice": "d7", "drinkSize": word}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"price": None},
        {"price": 0},
        {"price": -100},
        {"price": 150.0},
        {"price": 150.5},
        {"price": "15000"},
        {"price": True},
        {"price": False},
        {"price": [15000]},
        [],
        [{"price": 15000}],
        "15000",
        None,
    ],
)
def test_drink_price_unusable_is_rejected_never_default(body):
    with pytest.raises(TmetrRejected):
        run(_client(Recorder(_json(body))).drink_price(device_id="dev-1", drink_no="d7", size=1))


def test_drink_price_empty_body_rejected():
    with pytest.raises(TmetrRejected):
        run(_client(Recorder(lambda r: httpx.Response(200))).drink_price(device_id="d", drink_no="x", size=0))


def test_drink_price_non_json_rejected():
    with pytest.raises(TmetrRejected):
        run(
            _client(Recorder(lambda r: httpx.Response(200, text="<html>"))).drink_price(
                device_id="d", drink_no="x", size=0
            )
        )


def test_drink_price_404_rejected():
    body = {"errorCode": "NOT_FOUND", "errorId": "e1", "errorMessage": "no drink"}
    with pytest.raises(TmetrRejected) as info:
        run(_client(Recorder(_json(body, 404))).drink_price(device_id="d", drink_no="x", size=0))
    assert "no drink" in info.value.detail


def test_401_is_unauthorized_and_loud(caplog):
    caplog.set_level(logging.ERROR, logger="coffee_payment")
    with pytest.raises(TmetrUnauthorized):
        run(_client(Recorder(_json({"errorMessage": "expired"}, 401))).drink_price(device_id="d", drink_no="x", size=0))
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


def test_401_on_make_is_unauthorized():
    with pytest.raises(TmetrUnauthorized):
        run(_client(Recorder(_json({}, 401))).make(MakeCommand("d", "o", "k", "small", 100)))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_unavailable(status):
    with pytest.raises(TmetrUnavailable):
        run(
            _client(Recorder(lambda r: httpx.Response(status, text="bad gateway"))).drink_price(
                device_id="d", drink_no="x", size=0
            )
        )


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError])
def test_transport_errors_unavailable(exc):
    def raise_(request):
        raise exc("boom", request=request)

    with pytest.raises(TmetrUnavailable):
        run(_client(Recorder(raise_)).drink_price(device_id="d", drink_no="x", size=0))


def test_explicit_timeouts_sent():
    seen = []

    def reply(request):
        seen.append(request.extensions.get("timeout"))
        return httpx.Response(200, json={"price": 1})

    run(_client(Recorder(reply)).drink_price(device_id="d", drink_no="x", size=0))
    assert seen[0]["connect"] == 3 and seen[0]["read"] == 5


# --- heartbeat ----------------------------------------------------------------------------------------------


def _heartbeat(stamp: Any) -> dict[str, Any]:
    return {
        "content": [{"deviceId": "dev-1", "deviceIotName": "iot", "heartbeatCreatedAt": stamp}],
        "totalElements": 1,
        "offset": 0,
        "limit": 1,
    }


def test_heartbeat_seconds():
    rec = Recorder(_json(_heartbeat(1764412800)))
    when = run(_client(rec).last_heartbeat(device_id="dev-1"))
    assert when == datetime(2025, 11, 29, 10, 40, tzinfo=UTC)
    request = rec.requests[0]
    assert str(request.url) == "https://tmetr.test/api/ui/v1/stat/heartbeat/recent"
    assert request.headers["X-TimeZoneOffset"] == "0"
    assert request.headers["Authorization"] == "Bearer jwt-token"
    assert rec.body() == {"deviceIds": ["dev-1"], "offset": 0, "limit": 1}


def test_heartbeat_milliseconds():
    when = run(_client(Recorder(_json(_heartbeat(1764412800123)))).last_heartbeat(device_id="dev-1"))
    assert abs(when.timestamp() - 1764412800.123) < 1e-3
    assert when.tzinfo is not None


def test_heartbeat_seconds_and_ms_agree():
    a = run(_client(Recorder(_json(_heartbeat(1764412800)))).last_heartbeat(device_id="d"))
    b = run(_client(Recorder(_json(_heartbeat(1764412800000)))).last_heartbeat(device_id="d"))
    assert a == b


@pytest.mark.parametrize(
    "body",
    [
        {"content": [], "totalElements": 0, "offset": 0, "limit": 1},
        {},
        _heartbeat(None),
        _heartbeat("1764412800"),
        _heartbeat(True),
        {"content": ["x"]},
    ],
)
def test_heartbeat_none(body):
    assert run(_client(Recorder(_json(body))).last_heartbeat(device_id="d")) is None


def test_heartbeat_5xx_unavailable():
    with pytest.raises(TmetrUnavailable):
        run(_client(Recorder(_json({}, 503))).last_heartbeat(device_id="d"))


# --- make ------------------------------------------------------------------------------------------------------

COMMAND = MakeCommand(device_id="dev-1", order_uuid="order-1", drink_uuid="drink-7", size="medium", price_kopecks=15000)


def test_make_sends_array_of_one_command():
    rec = Recorder(lambda r: httpx.Response(200, json={"ok": True}))
    assert run(_client(rec).make(COMMAND)) is None
    request = rec.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://tmetr.test/api/commander/v1/command/make"
    assert request.headers["Authorization"] == "Bearer jwt-token"
    assert rec.body() == [
        {"deviceId": "dev-1", "orderUuid": "order-1", "drinkUuid": "drink-7", "size": "medium", "price": 15000}
    ]


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_make_2xx_accepted(status):
    rec = Recorder(lambda r: httpx.Response(status))
    run(_client(rec).make(COMMAND))
    assert len(rec.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_make_4xx_rejected(status):
    body = {"errorCode": "BUSY", "errorId": "e", "errorMessage": "device busy"}
    with pytest.raises(TmetrRejected):
        run(_client(Recorder(_json(body, status))).make(COMMAND))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_make_3xx_is_not_accepted(status):
    """Only a 2xx accepts a make (docs/domain.md §2). Redirects are not followed, so a 3xx (a moved API, a proxy
    sending to a login page) was an 'accepted' make: the order showed the drink being made while nothing was."""
    rec = Recorder(lambda r: httpx.Response(status, headers={"Location": "https://tmetr.test/login"}))
    with pytest.raises(TmetrRejected):
        run(_client(rec).make(COMMAND))
    assert len(rec.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_make_5xx_unavailable_and_not_resent(status):
    rec = Recorder(lambda r: httpx.Response(status))
    with pytest.raises(TmetrUnavailable):
        run(_client(rec).make(COMMAND))
    assert len(rec.requests) == 1


def test_make_timeout_unavailable_and_not_resent():
    rec = Recorder(lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)))
    with pytest.raises(TmetrUnavailable):
        run(_client(rec).make(COMMAND))
    assert len(rec.requests) == 1


@pytest.mark.parametrize("stamp", [1e20, -1e20, float("1e300")])
def test_heartbeat_absurd_stamp_is_a_tmetr_answer_not_a_crash(stamp):
    """An out-of-range heartbeatCreatedAt must come back as None or a TmetrError (the caller only handles
    TmetrError), never a bare ValueError/OverflowError/OSError from datetime.fromtimestamp."""
    client = _client(Recorder(_json(_heartbeat(stamp))))
    assert run(client.last_heartbeat(device_id="d")) is None  # no usable heartbeat
