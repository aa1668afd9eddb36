"""A scan of a new order asks Tmetr for the device's heartbeat and the drink's price at once (one round trip of
wait, not two), and the answers are judged in the same order as before: offline first (409, whatever the price
call said), then a Tmetr failure of either call (502, never a default price), then the price (domain.md §1)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import httpx
import pytest
from django.test import Client

from coffee_payment.devices.models import DeviceStatus
from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.models import Order
from tests.unit.factories import make_order

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

DELAY_S = 0.1  # each Tmetr answer waits this long, so two calls at once overlap in flight


class FakeTmetr:
    """Tmetr answering after ``DELAY_S``: a heartbeat ``age_s`` seconds old (None: no heartbeat), the ``price``
    (None: none), or HTTP 500 on the calls named in ``failing`` ("heartbeat", "price")."""

    def __init__(self) -> None:
        self.age_s: float | None = 10.0
        self.price: int | None = 15000
        self.failing: set[str] = set()
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        call = "heartbeat" if "heartbeat" in request.url.path else "price"
        self.calls.append(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(DELAY_S)
        finally:
            self.in_flight -= 1
        if call in self.failing:
            return httpx.Response(500, json={"error": "down"})
        if call == "heartbeat":
            content = [] if self.age_s is None else [{"deviceId": "d", "heartbeatCreatedAt": time.time() - self.age_s}]
            return httpx.Response(200, json={"content": content, "totalElements": len(content)})
        return httpx.Response(200, json={"price": self.price})


@pytest.fixture
def tmetr():
    fake = FakeTmetr()
    shared_http.set_transport(httpx.MockTransport(fake))
    yield fake
    shared_http.set_transport(None)


def _scan(client: Client, *, status: str = DeviceStatus.ACTIVE, machine_uuid: str = "scan-new-1"):
    device = make_order(device_status=status).device
    query = {"deviceUuid": device.device_uuid, "drinkNo": "d7", "drinkName": "Капучино", "size": "1"}
    return client.get("/v1/pay?" + urlencode({**query, "uuid": machine_uuid}), HTTP_ACCEPT_LANGUAGE="ru")


def _orders(machine_uuid: str = "scan-new-1") -> int:
    return Order.objects.filter(machine_uuid=machine_uuid).count()


def test_online_device_both_calls_at_once_then_the_order(client: Client, tmetr: FakeTmetr) -> None:
    response = _scan(client)
    assert response.status_code == 302 and "order_id=" in response["Location"]
    assert sorted(tmetr.calls) == ["heartbeat", "price"]
    assert tmetr.max_in_flight == 2, "the calls ran one after the other"
    assert Order.objects.get(machine_uuid="scan-new-1").price_kopecks == 15000


@pytest.mark.parametrize("age_s", [None, 3 * 3600])
@pytest.mark.parametrize("price_fails", [False, True])
def test_offline_device_is_409_whatever_the_price_call_said(
    client: Client, tmetr: FakeTmetr, age_s: float | None, price_fails: bool
) -> None:
    tmetr.age_s = age_s
    if price_fails:
        tmetr.failing.add("price")
    response = _scan(client)
    assert response.status_code == 409 and "сейчас не на связи" in response.content.decode()
    assert _orders() == 0


@pytest.mark.parametrize("failing", [{"heartbeat"}, {"price"}, {"heartbeat", "price"}])
def test_tmetr_failure_of_either_call_is_502_and_no_order(client: Client, tmetr: FakeTmetr, failing: set[str]) -> None:
    tmetr.failing = set(failing)
    response = _scan(client)
    assert response.status_code == 502 and "Цена этого напитка" in response.content.decode()
    assert _orders() == 0


@pytest.mark.parametrize("price", [None, 0, -5])
def test_unusable_price_is_502_never_a_default(client: Client, tmetr: FakeTmetr, price: int | None) -> None:
    tmetr.price = price
    response = _scan(client)
    assert response.status_code == 502 and _orders() == 0


def test_test_device_skips_the_online_check(client: Client, tmetr: FakeTmetr) -> None:
    tmetr.age_s = None  # would be offline
    response = _scan(client, status=DeviceStatus.TEST)
    assert response.status_code == 302 and tmetr.calls == ["price"]
    assert _orders() == 1


def test_rescan_reuses_the_order_without_asking_tmetr(client: Client, tmetr: FakeTmetr) -> None:
    first = _scan(client)
    tmetr.calls.clear()
    order = Order.objects.get(machine_uuid="scan-new-1")
    query = {"deviceUuid": order.device.device_uuid, "drinkNo": "d7", "drinkName": "Капучино", "size": "1"}
    again = client.get("/v1/pay?" + urlencode({**query, "uuid": "scan-new-1"}))
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert tmetr.calls == [] and _orders() == 1


def test_a_bug_in_the_price_call_of_an_offline_device_is_logged_not_hidden(client, tmetr, monkeypatch, caplog):
    tmetr.age_s = None

    async def broken(self, **_):
        raise RuntimeError("bug in the price call")

    monkeypatch.setattr("coffee_payment.integrations.tmetr.TmetrClient.drink_price", broken)
    response = _scan(client)
    assert response.status_code == 409 and _orders() == 0
    assert any(r.levelname == "ERROR" and "bug in the price call" in str(r.exc_info) for r in caplog.records)
