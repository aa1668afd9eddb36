"""A breaker pass over the provider webhooks with real-shaped provider messages (YooKassa notification objects as
https://yookassa.ru/developers/using-api/webhooks shows them; TBank notifications as its acquiring API v2 sends them:
Amount int kopecks, Success boolean, PaymentId a number, ErrorCode "0", Token over the root scalars), spoofs,
replays, out-of-order events and malformed bodies, through the real view, inbox and processing. The providers
and Tmetr answer in-process (``httpx.MockTransport``) from a state each test sets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.state import AttemptStatus, MakeState, OrderStatus
from coffee_payment.payments.models import Notification, PaymentAttempt
from coffee_payment.payments.providers.tbank_token import tbank_token
from tests.unit.factories import PRICE, make_attempt, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

YK_PATH, TB_PATH = "/v1/yook-pay-webhook", "/v1/tbank-webhook"
YK_ID = "2f0000aa-000f-5000-9000-1b2c3d4e5f60"
YK_REFUND_ID = "2f0000bb-0015-5000-9000-1b2c3d4e5f61"
TERMINAL, PASSWORD = "1700000000000DEMO", "usaf8fw8fsw21g"


class Providers:
    """What YooKassa (payments, refunds), TBank (GetState) and Tmetr (make) answer; calls recorded by path."""

    def __init__(self) -> None:
        self.yk_payments: dict[str, dict[str, Any]] = {}
        self.yk_refunds: dict[str, dict[str, Any]] = {}
        self.tb_states: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def makes(self) -> int:
        return sum(path.endswith("/command/make") for path in self.calls)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(path)
        if "/payments/" in path:
            found = self.yk_payments.get(path.rsplit("/", 1)[-1])
            if found is None:
                return httpx.Response(404, json={"type": "error", "code": "not_found", "description": "no payment"})
            return httpx.Response(200, json=found)
        if "/refunds/" in path:
            found = self.yk_refunds.get(path.rsplit("/", 1)[-1])
            if found is None:
                return httpx.Response(404, json={"type": "error", "code": "not_found", "description": "no refund"})
            return httpx.Response(200, json=found)
        if path.endswith("/GetState"):
            body = json.loads(request.content)
            found = self.tb_states.get(str(body["PaymentId"]))
            if found is None:
                return httpx.Response(200, json={"Success": False, "ErrorCode": "7", "Message": "no payment"})
            return httpx.Response(200, json=found)
        if path.endswith("/command/make"):
            return httpx.Response(200, json={})
        return httpx.Response(404, json={})


@pytest.fixture
def providers():
    state = Providers()
    shared_http.set_transport(httpx.MockTransport(state))
    yield state
    shared_http.set_transport(None)


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    settings.RATE_LIMIT_WEBHOOK_PER_MINUTE = 0


def _post(client, path: str, body: Any, *, content_type: str = "application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
    return client.post(path, data=data, content_type=content_type, REMOTE_ADDR="185.71.76.5")


# --- YooKassa: real notification objects ------------------------------------------------------------------------


def yk_payment(status: str = "succeeded", *, value: str = "150.00", currency: str = "RUB", attempt=None, **extra):
    """A payment object as YooKassa sends it in a notification and answers ``GET /v3/payments/{id}``."""
    payment: dict[str, Any] = {
        "id": YK_ID,
        "status": status,
        "amount": {"value": value, "currency": currency},
        "description": "Капучино (средний), заказ №72 — «тест» 😀",
        "recipient": {"account_id": "100500", "gateway_id": "100700"},
        "created_at": "2026-11-29T10:45:12.120Z",
        "test": False,
        "paid": status in ("succeeded", "waiting_for_capture"),
        "refundable": status == "succeeded",
        "metadata": {"order_id": "72", "attempt_id": str(attempt.id) if attempt else "x", "cms_name": "none"},
    }
    if status == "succeeded":
        payment |= {
            "income_amount": {"value": "144.75", "currency": currency},
            "captured_at": "2026-11-29T10:45:40.000Z",
            "refunded_amount": {"value": "0.00", "currency": currency},
            "payment_method": {
                "type": "bank_card",
                "id": YK_ID,
                "saved": False,
                "title": "Bank card *4444",
                "card": {
                    "first6": "555555",
                    "last4": "4444",
                    "expiry_month": "07",
                    "expiry_year": "2027",
                    "card_type": "MasterCard",
                    "issuer_country": "RU",
                },
            },
            "authorization_details": {
                "rrn": "603668680243",
                "auth_code": "000000",
                "three_d_secure": {"applied": True},
            },
        }
    if status == "canceled":
        payment["cancellation_details"] = {"party": "yoo_money", "reason": "expired_on_confirmation"}
    return payment | extra


def yk_notification(event: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": "notification", "event": event, "object": obj}


def _yk_order():
    order = make_order(provider="yookassa")
    return order, make_attempt(order, payment_id=YK_ID)


def test_yookassa_payment_succeeded_full_body_dispenses_once(client, providers):
    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("succeeded", attempt=attempt)
    body = yk_notification("payment.succeeded", yk_payment("succeeded", attempt=attempt))
    for _ in range(3):  # YooKassa re-delivers
        response = _post(client, YK_PATH, body)
        assert response.status_code == 200, response.content
    order.refresh_from_db()
    assert (order.status, order.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert providers.makes() == 1


def test_yookassa_waiting_for_capture_and_canceled(client, providers):
    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("waiting_for_capture", attempt=attempt)
    response = _post(client, YK_PATH, yk_notification("payment.waiting_for_capture", providers.yk_payments[YK_ID]))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    providers.yk_payments[YK_ID] = yk_payment("canceled", attempt=attempt)
    response = _post(client, YK_PATH, yk_notification("payment.canceled", providers.yk_payments[YK_ID]))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.NOT_PAID
    assert providers.makes() == 0


def test_yookassa_canceled_after_succeeded_changes_nothing(client, providers):
    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("succeeded", attempt=attempt)
    assert _post(client, YK_PATH, yk_notification("payment.succeeded", providers.yk_payments[YK_ID])).status_code == 200
    # A forged (or stale) canceled claim: the re-fetch still says succeeded.
    response = _post(client, YK_PATH, yk_notification("payment.canceled", yk_payment("canceled", attempt=attempt)))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_PENDING and providers.makes() == 1


def test_yookassa_refund_succeeded_real_refund_object(client, providers):
    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("succeeded", attempt=attempt)
    assert _post(client, YK_PATH, yk_notification("payment.succeeded", providers.yk_payments[YK_ID])).status_code == 200
    refund = {
        "id": YK_REFUND_ID,
        "payment_id": YK_ID,
        "status": "succeeded",
        "created_at": "2026-11-29T11:00:00.000Z",
        "amount": {"value": "150.00", "currency": "RUB"},
        "description": "Возврат: машина не сделала напиток",
    }
    providers.yk_refunds[YK_REFUND_ID] = refund
    response = _post(client, YK_PATH, yk_notification("refund.succeeded", refund))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED


@pytest.mark.parametrize("value,currency", [("1.00", "RUB"), ("150.00", "USD"), ("15000.00", "RUB")])
def test_yookassa_succeeded_for_another_amount_or_currency_fails_the_order(client, providers, value, currency):
    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("succeeded", value=value, currency=currency, attempt=attempt)
    response = _post(client, YK_PATH, yk_notification("payment.succeeded", yk_payment("succeeded", attempt=attempt)))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED and providers.makes() == 0


def test_yookassa_spoofed_succeeded_for_a_pending_payment_moves_nothing(client, providers):
    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("pending", attempt=attempt)
    response = _post(client, YK_PATH, yk_notification("payment.succeeded", yk_payment("succeeded", attempt=attempt)))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0


def test_yookassa_unknown_payment_and_other_events_are_200(client, providers):
    _yk_order()
    for event, obj in [
        ("payment.succeeded", {"id": "2f0000aa-000f-5000-9000-000000000000", "status": "succeeded"}),
        ("payment_method.active", {"id": "pm-1", "type": "bank_card", "status": "active"}),
        ("payout.succeeded", {"id": "po-285e5ee7-0022-5000-8000-01516a44b147", "status": "succeeded"}),
        ("deal.closed", {"id": "dl-285e5ee7-0022-5000-8000-01516a44b147", "status": "closed"}),
    ]:
        response = _post(client, YK_PATH, yk_notification(event, obj))
        assert response.status_code == 200, (event, response.content)
    assert providers.makes() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"notification"',
        b"1e999999",
        b"{",
        b'{"type": "notification", "event": "payment.succeeded"}',
        b'{"type": "notification", "event": "payment.succeeded", "object": []}',
        b'{"type": "notification", "event": "payment.succeeded", "object": "x"}',
        b'{"type": "notification", "event": 7, "object": {"id": "x"}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": 123}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "../../refunds/x"}}',
        b'{"type": "notification", "event": "refund.succeeded", "object": {"id": 5, "payment_id": "abc"}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "a\\u0000b"}}',
        b"\xff\xfe{}",
        b'{"a":' * 100000,
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "' + b"9" * 5000 + b'"}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": ' + b"9" * 5000 + b"}}",
    ],
)
def test_yookassa_malformed_bodies_are_4xx(client, providers, body):
    _yk_order()
    response = _post(client, YK_PATH, body)
    assert 400 <= response.status_code < 500, (response.status_code, response.content)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", ""]
)
def test_wrong_content_types_are_415(client, providers, content_type):
    order, attempt = _yk_order()
    body = json.dumps(yk_notification("payment.succeeded", yk_payment("succeeded", attempt=attempt)))
    response = client.post(YK_PATH, data=body, content_type=content_type, REMOTE_ADDR="185.71.76.5")
    assert response.status_code == 415, response.content
    response = client.post(TB_PATH, data=body, content_type=content_type, REMOTE_ADDR="185.71.76.5")
    assert response.status_code == 415, response.content


def test_get_and_oversized_are_4xx(client, providers):
    assert client.get(YK_PATH).status_code == 405
    assert client.get(TB_PATH).status_code == 405
    big = json.dumps({"type": "notification", "event": "x", "object": {"id": "a", "pad": "x" * 200_000}})
    assert _post(client, YK_PATH, big).status_code == 413
    assert _post(client, TB_PATH, big).status_code == 413


# --- TBank: real notifications ------------------------------------------------------------------------------------


def tb_notification(
    attempt, status: str, *, payment_id: Any = 4020012345, amount: Any = PRICE, password=PASSWORD, **extra
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "TerminalKey": TERMINAL,
        "OrderId": str(attempt.id),
        "Success": status not in ("REJECTED", "AUTH_FAIL"),
        "Status": status,
        "PaymentId": payment_id,
        "ErrorCode": "0" if status not in ("REJECTED", "AUTH_FAIL") else "1051",
        "Amount": amount,
        "CardId": 1234567,
        "Pan": "430000******0777",
        "ExpDate": "1230",
        "Rrn": "603668680243",
        "Data": {"Source": "cards", "Описание": "Капучино «средний»"},
    }
    if status in ("REJECTED", "AUTH_FAIL"):
        fields["Message"] = "Недостаточно средств на карте"
    fields |= extra
    return {**fields, "Token": tbank_token(fields, password)}


def tb_state(status: str, *, payment_id: str = "4020012345", amount: int = PRICE, attempt=None) -> dict[str, Any]:
    return {
        "Success": True,
        "ErrorCode": "0",
        "Message": "OK",
        "TerminalKey": TERMINAL,
        "Status": status,
        "PaymentId": payment_id,
        "OrderId": str(attempt.id) if attempt else "",
        "Amount": amount,
        "Params": [{"Key": "Route", "Value": "TCB"}],
    }


def _tb_order(**kwargs):
    order = make_order(provider="tbank", account_id=TERMINAL, secret=PASSWORD, **kwargs)
    return order, make_attempt(order, payment_id="4020012345")


def _ok(response) -> bool:
    return response.status_code == 200 and response.content == b"OK"


def test_tbank_authorized_and_confirmed_in_either_order_dispense_once(client, providers):
    for first, second in (("AUTHORIZED", "CONFIRMED"), ("CONFIRMED", "AUTHORIZED")):
        order, attempt = _tb_order()
        providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
        before = providers.makes()
        assert _ok(_post(client, TB_PATH, tb_notification(attempt, first)))
        assert _ok(_post(client, TB_PATH, tb_notification(attempt, second)))
        assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
        order.refresh_from_db()
        assert (order.status, order.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
        assert providers.makes() == before + 1
        PaymentAttempt.objects.filter(pk=attempt.pk).delete()


def test_tbank_payment_id_as_string_and_amount_types(client, providers):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED", payment_id="4020012345")))
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_PENDING


@pytest.mark.parametrize("status", ["REJECTED", "AUTH_FAIL", "CANCELED", "REVERSED", "DEADLINE_EXPIRED"])
def test_tbank_not_paid_statuses(client, providers, status):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state(status, attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, status)))
    order.refresh_from_db()
    assert order.status == OrderStatus.NOT_PAID and providers.makes() == 0


def test_tbank_confirmed_after_a_declined_card_on_the_same_payment_is_not_lost(client, providers):
    """TBank's form lets the customer try again after a declined card (AUTH_FAIL/REJECTED, until
    ATTEMPTS_EXPIRED): the same payment then ends CONFIRMED. That money must not be lost."""
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("REJECTED", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "REJECTED")))
    order.refresh_from_db()
    assert order.status == OrderStatus.NOT_PAID
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert (order.status, order.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert providers.makes() == 1


@pytest.mark.parametrize("status", ["REFUNDED", "PARTIAL_REFUNDED"])
def test_tbank_refund_after_confirmed(client, providers, status):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
    providers.tb_states["4020012345"] = tb_state(status, attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, status)))
    # a late duplicate CONFIRMED changes nothing
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and providers.makes() == 1


def test_tbank_refund_before_confirmed_wins(client, providers):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("REFUNDED", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "REFUNDED")))
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and providers.makes() == 0


def test_tbank_confirmed_for_another_amount_fails_the_order(client, providers):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", amount=100, attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED", amount=100)))
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED and providers.makes() == 0


def test_tbank_signed_confirmed_that_getstate_denies_moves_nothing(client, providers):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("NEW", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0


def test_tbank_spoofs_are_400_and_move_nothing(client, providers):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    bad_token = tb_notification(attempt, "CONFIRMED") | {"Token": "0" * 64}
    assert _post(client, TB_PATH, bad_token).status_code == 400
    wrong_password = tb_notification(attempt, "CONFIRMED", password="other")
    assert _post(client, TB_PATH, wrong_password).status_code == 400
    tampered = tb_notification(attempt, "AUTHORIZED") | {"Status": "CONFIRMED"}
    assert _post(client, TB_PATH, tampered).status_code == 400
    unknown_terminal = tb_notification(attempt, "CONFIRMED", TerminalKey="OtherTerminal")
    assert _post(client, TB_PATH, unknown_terminal).status_code == 400
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0


def test_tbank_another_merchants_terminal_cannot_settle_our_attempt(client, providers):
    order, attempt = _tb_order()
    make_order(provider="tbank", account_id="EvilTerminal", secret="evilpass")
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    forged = tb_notification(attempt, "CONFIRMED", TerminalKey="EvilTerminal", password="evilpass")
    response = _post(client, TB_PATH, forged)
    assert response.status_code in (200, 400)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"{}",
        b'{"TerminalKey": 5}',
        b"TerminalKey=x&Status=CONFIRMED",
        b'{"TerminalKey": "1700000000000DEMO", "Status": "CONFIRMED"}',
        b'{"TerminalKey": "1700000000000DEMO", "Token": 5}',
        b'{"TerminalKey": "1700000000000DEMO", "Token": null, "Amount": 1e400}',
        b'{"TerminalKey": "1700000000000DEMO", "Amount": ' + b"9" * 5000 + b"}",
    ],
)
def test_tbank_malformed_bodies_are_4xx(client, providers, body):
    _tb_order()
    response = _post(client, TB_PATH, body)
    assert 400 <= response.status_code < 500, (response.status_code, response.content)


@pytest.mark.parametrize(
    "overrides",
    [
        {"Amount": -15000},
        {"Amount": 10**30},
        {"Amount": 150.0},
        {"Amount": "15000"},
        {"PaymentId": 10**30},
        {"PaymentId": True},
        {"PaymentId": {"x": 1}},
        {"PaymentId": -1},
        {"OrderId": 12345},
        {"OrderId": "not-an-attempt"},
        {"Status": None},
        {"Status": "SOMETHING_NEW"},
        {"Success": "true"},
        {"ErrorCode": 0},
        {"Description": "Тест\u2028юникод"},
        {"Fee": 1.5},
        {"Rrn": None},
    ],
)
@pytest.mark.parametrize("status", ["CONFIRMED", "AUTHORIZED"])
def test_tbank_signed_odd_field_types_never_500_nor_dispense_wrongly(client, providers, overrides, status):
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    body = tb_notification(attempt, status, **overrides)
    response = _post(client, TB_PATH, body)
    assert response.status_code < 500, response.content
    assert response.status_code == 400 or _ok(response)
    order.refresh_from_db()
    assert providers.makes() <= 1
    assert Notification.objects.count() == 1


# --- concurrency: identical notifications at once (run with DATABASE_URL=postgres://... for real row locks) -----


def _concurrently(n: int, send) -> list:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def one(i: int):
        try:
            return send(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_identical_notifications_at_once_make_one_drink(providers):
    from django.test import Client

    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    yk_order, yk_attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("succeeded", attempt=yk_attempt)
    tb_body = tb_notification(attempt, "CONFIRMED")
    yk_body = yk_notification("payment.succeeded", yk_payment("succeeded", attempt=yk_attempt))

    def send(i: int):
        path, body = (TB_PATH, tb_body) if i % 2 else (YK_PATH, yk_body)
        return _post(Client(), path, body)

    responses = _concurrently(8, send)
    assert [r.status_code for r in responses] == [200] * 8, [r.content for r in responses]
    for o in (order, yk_order):
        o.refresh_from_db()
        assert (o.status, o.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert providers.makes() == 2


@pytest.mark.parametrize("token", ["é" * 64, "токен", "\u2028", "ａ" * 64])
def test_tbank_non_ascii_token_is_400_not_500(client, providers, token):
    """A Token with non-ASCII characters: ``hmac.compare_digest`` raises TypeError on non-ASCII str, which
    escaped the inbox as a 500 (and nothing stored)."""
    order, attempt = _tb_order()
    body = tb_notification(attempt, "CONFIRMED") | {"Token": token}
    response = _post(client, TB_PATH, body)
    assert response.status_code == 400, response.content
    assert Notification.objects.count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0


def test_a_yookassa_notification_for_our_attempt_whose_merchant_account_is_gone_is_retried_and_kept(client, providers):
    """Our attempt, but its merchant's YooKassa account is gone (removed in the admin): our misconfiguration, not
    'a payment of someone else'. It was answered 200 ``unknown_payment`` with the body cut to its start, so
    YooKassa stopped retrying, a replay was impossible and the reconciler cannot poll without the account: a paid
    order left pending. Now 503 (retried), the body kept whole; a replay after the account is back settles it."""
    from asgiref.sync import async_to_sync

    from coffee_payment.devices.models import ProviderAccount
    from coffee_payment.payments.notifications import notification_replay

    order, attempt = _yk_order()
    providers.yk_payments[YK_ID] = yk_payment("succeeded", attempt=attempt)
    body = yk_notification("payment.succeeded", providers.yk_payments[YK_ID])
    account = ProviderAccount.objects.get(merchant=order.device.merchant)
    account.delete()
    response = _post(client, YK_PATH, body)
    assert response.status_code == 503, response.content
    stored = Notification.objects.get()
    assert stored.verdict == "error" and not stored.body_truncated and json.loads(stored.body) == body
    # A replay while the account is still missing keeps it whole too.
    assert async_to_sync(notification_replay)(stored.pk).http_status == 503
    stored.refresh_from_db()
    assert not stored.body_truncated and json.loads(stored.body) == body
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0
    ProviderAccount.objects.create(merchant=order.device.merchant, provider="yookassa", account_id="shop", secret="s")
    assert async_to_sync(notification_replay)(stored.pk).http_status == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_PENDING and providers.makes() == 1


@pytest.mark.parametrize("path", [YK_PATH, TB_PATH])
def test_a_body_above_djangos_upload_limit_is_4xx(client, providers, path):
    big = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = _post(client, path, big)
    assert 400 <= response.status_code < 500


def test_tbank_fiscal_receipt_notification_is_ok_and_changes_nothing(client, providers):
    """TBank's notification about a fiscal receipt (Status RECEIPT, receipt numbers, a nested Receipt) is signed
    like any other: answered OK, no GetState needed, no change."""
    order, attempt = _tb_order()
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    assert _ok(_post(client, TB_PATH, tb_notification(attempt, "CONFIRMED")))
    receipt = {
        "TerminalKey": TERMINAL,
        "OrderId": str(attempt.id),
        "Success": True,
        "Status": "RECEIPT",
        "PaymentId": 4020012345,
        "ErrorCode": "0",
        "Amount": PRICE,
        "FiscalNumber": 51,
        "ShiftNumber": 11,
        "ReceiptDatetime": "2026-11-29T13:45:00+03:00",
        "ReceiptNumber": 93,
        "FnNumber": "9999078900004312",
        "EcrRegNumber": "0000000400054952",
        "FiscalDocumentNumber": 1013,
        "FiscalDocumentAttribute": 3133999976,
        "Type": "Income",
        "Receipt": {"Taxation": "usn_income", "Items": [{"Name": "Капучино", "Price": PRICE, "Quantity": 1}]},
    }
    receipt["Token"] = tbank_token(receipt, PASSWORD)
    calls = len(providers.calls)
    assert _ok(_post(client, TB_PATH, receipt))
    assert len(providers.calls) == calls  # no GetState for a status that moves nothing
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_PENDING and providers.makes() == 1


def test_a_tbank_notification_signed_by_another_merchants_terminal_for_our_attempt_without_account_is_ok(
    client, providers
):
    """The other side of the missing-account rule: a TBank notification names its terminal; when that terminal is
    another merchant's and the attempt's merchant has no TBank account, it is not ours to settle (OK, no retry)."""
    from coffee_payment.devices.models import ProviderAccount

    order, attempt = _tb_order()
    ProviderAccount.objects.filter(merchant=order.device.merchant).delete()
    make_order(provider="tbank", account_id="EvilTerminal", secret="evilpass")
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=attempt)
    forged = tb_notification(attempt, "CONFIRMED", TerminalKey="EvilTerminal", password="evilpass")
    assert _ok(_post(client, TB_PATH, forged))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and providers.makes() == 0


def test_a_second_payment_of_one_order_is_flagged_for_a_refund(client, providers, caplog):
    """Two attempts of one order both paid (the customer paid the old tab after Pay again), or one paid after the
    order was refunded: one drink, and the payment the order does not stand on is logged for staff to refund
    (nothing else surfaced it)."""
    order, first = _tb_order()
    second = make_attempt(order, payment_id="4020099999")
    providers.tb_states["4020099999"] = tb_state("CONFIRMED", payment_id="4020099999", attempt=second)
    providers.tb_states["4020012345"] = tb_state("CONFIRMED", attempt=first)
    assert _ok(_post(client, TB_PATH, tb_notification(second, "CONFIRMED", payment_id=4020099999)))
    caplog.clear()
    assert _ok(_post(client, TB_PATH, tb_notification(first, "CONFIRMED")))
    order.refresh_from_db()
    first.refresh_from_db()
    assert order.status == OrderStatus.MAKE_PENDING and providers.makes() == 1
    assert first.status == AttemptStatus.SUCCEEDED
    assert any("payment.duplicate" in r.getMessage() and str(first.id) in r.getMessage() for r in caplog.records)
