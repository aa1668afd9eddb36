"""TBank Token (docs/domain.md §4), notification verification, and the Init/GetState/CheckOrder client on a mock
transport."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from coffee_payment.orders.state import PaymentOutcome
from coffee_payment.payments.providers.base import (
    InvalidNotification,
    PaymentRequest,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from coffee_payment.payments.providers.tbank import STATUS_MAP, TBankClient, map_status
from coffee_payment.payments.providers.tbank_token import tbank_token, tbank_token_valid
from tests.unit.mock_http import Recorder, run

pytestmark = pytest.mark.timeout(30)

TERMINAL = "MerchantTerminalKey"
PASSWORD = "usaf8fw8fsw21g"
OFFICIAL = {
    "TerminalKey": "MerchantTerminalKey",
    "Amount": 19200,
    "OrderId": "21090",
    "Description": "Подарочная карта на 1000 рублей",
}
OFFICIAL_TOKEN = "0024a00af7c350a3a67ca168ce06502aa72772456662e38696d48b56ee9c97d9"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Token ---------------------------------------------------------------------------------------------------


def test_official_vector():
    assert tbank_token(OFFICIAL, PASSWORD) == OFFICIAL_TOKEN


def test_official_vector_order_id_as_number_gives_same_token():
    assert tbank_token({**OFFICIAL, "OrderId": 21090}, PASSWORD) == OFFICIAL_TOKEN


def test_token_is_64_lowercase_hex():
    token = tbank_token(OFFICIAL, PASSWORD)
    assert len(token) == 64 and token == token.lower() and int(token, 16) >= 0


def test_booleans_as_true_false():
    fields = {"TerminalKey": "T", "Success": True, "Amount": 100}
    # sorted keys: Amount, Password, Success, TerminalKey
    assert tbank_token(fields, "pw") == _sha("100" + "pw" + "true" + "T")
    assert tbank_token({**fields, "Success": False}, "pw") == _sha("100" + "pw" + "false" + "T")


def test_notification_with_success_true_matches_manual_concatenation():
    note = {
        "TerminalKey": TERMINAL,
        "OrderId": "a1",
        "Success": True,
        "Status": "CONFIRMED",
        "PaymentId": 13660,
        "ErrorCode": "0",
        "Amount": 15000,
        "CardId": 31,
        "Pan": "430000******0777",
        "ExpDate": "1230",
    }
    expected = _sha(
        "15000" + "31" + "0" + "1230" + "a1" + "430000******0777" + PASSWORD + "13660" + "CONFIRMED" + "true" + TERMINAL
    )
    assert tbank_token(note, PASSWORD) == expected


@pytest.mark.parametrize("nested_key", ["DATA", "Data", "Receipt", "Shops"])
@pytest.mark.parametrize("nested", [{"Email": "a@b.c", "X": 1}, [{"a": 1}], [], {}])
def test_nested_objects_and_arrays_excluded(nested_key, nested):
    assert tbank_token({**OFFICIAL, nested_key: nested}, PASSWORD) == OFFICIAL_TOKEN


def test_token_field_excluded():
    assert tbank_token({**OFFICIAL, "Token": "whatever"}, PASSWORD) == OFFICIAL_TOKEN


def test_numbers_as_decimal_text():
    assert tbank_token({"Amount": 100, "PaymentId": 7}, "p") == _sha("100" + "p" + "7")
    assert tbank_token({"Amount": "100", "PaymentId": "7"}, "p") == _sha("100" + "p" + "7")


def test_token_valid_accepts_correct_token():
    assert tbank_token_valid({**OFFICIAL, "Token": OFFICIAL_TOKEN}, PASSWORD)


def test_token_valid_accepts_uppercase_token():
    assert tbank_token_valid({**OFFICIAL, "Token": OFFICIAL_TOKEN.upper()}, PASSWORD)


@pytest.mark.parametrize("token", [None, "", 123, OFFICIAL_TOKEN[:-1], OFFICIAL_TOKEN[:-1] + "0", "x" * 64])
def test_token_valid_rejects_bad_or_missing(token):
    fields = dict(OFFICIAL)
    if token is not None:
        fields["Token"] = token
    assert not tbank_token_valid(fields, PASSWORD)


def test_token_valid_rejects_wrong_password():
    assert not tbank_token_valid({**OFFICIAL, "Token": OFFICIAL_TOKEN}, PASSWORD + "x")


def test_token_valid_rejects_changed_field():
    assert not tbank_token_valid({**OFFICIAL, "Amount": 19201, "Token": OFFICIAL_TOKEN}, PASSWORD)


def test_token_valid_uses_constant_time_compare(monkeypatch):
    import coffee_payment.payments.providers.tbank_token as module

    calls = []
    real = module.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(module.hmac, "compare_digest", spy)
    assert module.tbank_token_valid({**OFFICIAL, "Token": OFFICIAL_TOKEN}, PASSWORD)
    assert calls, "tbank_token_valid must compare with hmac.compare_digest"


# --- status map ----------------------------------------------------------------------------------------------

_EXPECTED_MAP = {
    **{
        s: PaymentOutcome.PENDING
        for s in ("NEW", "FORM_SHOWED", "AUTHORIZING", "3DS_CHECKING", "3DS_CHECKED", "AUTHORIZED", "CONFIRMING")
    },
    "CONFIRMED": PaymentOutcome.SUCCEEDED,
    **{
        s: PaymentOutcome.CANCELED
        for s in ("REJECTED", "AUTH_FAIL", "DEADLINE_EXPIRED", "ATTEMPTS_EXPIRED", "CANCELED", "REVERSED")
    },
    "REFUNDED": PaymentOutcome.REFUNDED,
    "PARTIAL_REFUNDED": PaymentOutcome.REFUNDED,
}


@pytest.mark.parametrize(("status", "outcome"), sorted(_EXPECTED_MAP.items()))
def test_status_map(status, outcome):
    assert map_status(status) is outcome
    assert STATUS_MAP[status] is outcome


@pytest.mark.parametrize("status", ["SOMETHING_NEW", "", None, 5, "confirmed"])
def test_unknown_status_is_pending_never_paid(status):
    assert map_status(status) is PaymentOutcome.PENDING


# --- verify_notification ---------------------------------------------------------------------------------------


def _client(handler: Callable[[httpx.Request], httpx.Response] | None = None) -> TBankClient:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(500)))
    return TBankClient(
        httpx.AsyncClient(transport=transport),
        base_url="https://tbank.test/v2",
        terminal_key=TERMINAL,
        password=PASSWORD,
        connect_timeout=3,
        read_timeout=10,
    )


def _notification(**overrides: Any) -> dict[str, Any]:
    note: dict[str, Any] = {
        "TerminalKey": TERMINAL,
        "OrderId": "attempt-1",
        "Success": True,
        "Status": "CONFIRMED",
        "PaymentId": 700001,
        "ErrorCode": "0",
        "Amount": 15000,
        "CardId": 12,
        "Pan": "430000******0777",
        "ExpDate": "1230",
        "Data": {"Source": "cards"},
    }
    note.update(overrides)
    note = {k: v for k, v in note.items() if v is not ...}
    note["Token"] = tbank_token(note, PASSWORD)
    return note


def test_verify_notification_good():
    payment = _client().verify_notification(_notification())
    assert payment.provider_payment_id == "700001"
    assert isinstance(payment.provider_payment_id, str)
    assert payment.outcome is PaymentOutcome.SUCCEEDED
    assert payment.provider_status == "CONFIRMED"
    assert payment.amount_kopecks == 15000
    assert payment.reference == "attempt-1"


def test_verify_notification_payment_id_string_also_ok():
    payment = _client().verify_notification(_notification(PaymentId="700001"))
    assert payment.provider_payment_id == "700001"


def test_verify_notification_bad_token():
    note = _notification()
    note["Token"] = "0" * 64
    with pytest.raises(InvalidNotification):
        _client().verify_notification(note)


def test_verify_notification_missing_token():
    note = _notification()
    del note["Token"]
    with pytest.raises(InvalidNotification):
        _client().verify_notification(note)


def test_verify_notification_tampered_amount():
    note = _notification()
    note["Amount"] = 1
    with pytest.raises(InvalidNotification):
        _client().verify_notification(note)


def test_verify_notification_wrong_terminal_key():
    # correctly signed with our password, but another terminal
    with pytest.raises(InvalidNotification):
        _client().verify_notification(_notification(TerminalKey="OtherTerminal"))


def test_verify_notification_new_unknown_scalar_field_included():
    note = _notification(Rrn="123456789012", NewFlag=False)
    assert _client().verify_notification(note).provider_payment_id == "700001"
    # the token really covers the new field: dropping it breaks verification
    without = {k: v for k, v in note.items() if k != "Rrn"}
    with pytest.raises(InvalidNotification):
        _client().verify_notification(without)


def test_verify_notification_nested_data_not_in_token():
    note = _notification()
    note["Data"] = {"Changed": "yes", "Other": [1, 2]}
    assert _client().verify_notification(note).outcome is PaymentOutcome.SUCCEEDED


def test_verify_notification_missing_amount():
    with pytest.raises(InvalidNotification):
        _client().verify_notification(_notification(Amount=...))


@pytest.mark.parametrize("amount", ["15000", 150.0, True, None])
def test_verify_notification_non_int_amount(amount):
    with pytest.raises(InvalidNotification):
        _client().verify_notification(_notification(Amount=amount))


@pytest.mark.parametrize("payment_id", [..., "", "  ", True, None, {"x": 1}])
def test_verify_notification_missing_payment_id(payment_id):
    with pytest.raises(InvalidNotification):
        _client().verify_notification(_notification(PaymentId=payment_id))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("AUTHORIZED", PaymentOutcome.PENDING),
        ("REJECTED", PaymentOutcome.CANCELED),
        ("REFUNDED", PaymentOutcome.REFUNDED),
    ],
)
def test_verify_notification_status_mapped(status, outcome):
    assert _client().verify_notification(_notification(Status=status, Success=status != "REJECTED")).outcome is outcome


# --- Init / GetState / CheckOrder over a mock transport ----------------------------------------------------------


REQUEST = PaymentRequest(
    reference="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    order_id="11111111-2222-3333-4444-555555555555",
    idempotency_key="99999999-8888-7777-6666-555555555555",
    amount_kopecks=15000,
    description="Капучино (medium), order 1111",
    return_url="https://pay.example/v1/order-status-page?order_id=1",
    notification_url="https://pay.example/v1/tbank-webhook",
    email="a@b.c",
)


def _init_ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "Success": True,
            "ErrorCode": "0",
            "TerminalKey": TERMINAL,
            "Status": "NEW",
            "PaymentId": "3093639567",
            "OrderId": body["OrderId"],
            "Amount": body["Amount"],
            "PaymentURL": "https://securepay.test/new/abc",
        },
    )


def test_init_success_and_request_token():
    rec = Recorder(_init_ok)
    payment = run(_client(rec).create_payment(REQUEST))
    assert payment.provider_payment_id == "3093639567"
    assert payment.outcome is PaymentOutcome.PENDING
    assert payment.confirmation_url == "https://securepay.test/new/abc"
    assert payment.amount_kopecks == 15000
    request = rec.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://tbank.test/v2/Init"
    body = rec.body()
    assert body["TerminalKey"] == TERMINAL
    assert body["Amount"] == 15000 and isinstance(body["Amount"], int)
    assert body["OrderId"] == REQUEST.reference
    assert len(body["OrderId"]) <= 36
    assert len(body["Description"]) <= 140
    assert body["NotificationURL"] == REQUEST.notification_url
    assert isinstance(body["DATA"], dict)
    assert body["Token"] == tbank_token(body, PASSWORD)
    assert tbank_token_valid(body, PASSWORD)


def test_init_long_description_is_cut_to_140():
    rec = Recorder(_init_ok)
    request = PaymentRequest(**{**REQUEST.__dict__, "description": "x" * 300})
    run(_client(rec).create_payment(request))
    assert len(rec.body()["Description"]) == 140
    assert rec.body()["Token"] == tbank_token(rec.body(), PASSWORD)


def test_init_success_false_with_http_200_is_rejected():
    rec = Recorder(
        lambda r: httpx.Response(
            200, json={"Success": False, "ErrorCode": "9999", "Message": "Неверные параметры", "Details": "x"}
        )
    )
    with pytest.raises(ProviderRejected):
        run(_client(rec).create_payment(REQUEST))


def test_init_success_missing_is_not_success():
    rec = Recorder(lambda r: httpx.Response(200, json={"ErrorCode": "0", "PaymentId": "1", "Status": "NEW"}))
    with pytest.raises(ProviderRejected):
        run(_client(rec).create_payment(REQUEST))


def test_init_error_204_is_misconfigured():
    rec = Recorder(
        lambda r: httpx.Response(200, json={"Success": False, "ErrorCode": "204", "Message": "Неверный токен"})
    )
    with pytest.raises(ProviderMisconfigured):
        run(_client(rec).create_payment(REQUEST))


def test_init_timeout_is_unavailable():
    def raise_timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(raise_timeout)).create_payment(REQUEST))


def test_init_connect_error_is_unavailable():
    def raise_connect(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(raise_connect)).create_payment(REQUEST))


@pytest.mark.parametrize("status", [500, 502, 503])
def test_init_5xx_is_unavailable(status):
    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(lambda r: httpx.Response(status, text="<html>oops</html>"))).create_payment(REQUEST))


def test_init_non_json_200_is_unavailable():
    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(lambda r: httpx.Response(200, text="not json"))).create_payment(REQUEST))


def test_get_state():
    def reply(request):
        body = json.loads(request.content)
        assert body["PaymentId"] == "3093639567"
        return httpx.Response(
            200,
            json={
                "Success": True,
                "ErrorCode": "0",
                "Status": "CONFIRMED",
                "PaymentId": "3093639567",
                "OrderId": "o1",
                "Amount": 15000,
            },
        )

    rec = Recorder(reply)
    payment = run(_client(rec).get_payment("3093639567"))
    assert str(rec.requests[0].url) == "https://tbank.test/v2/GetState"
    body = rec.body()
    assert set(body) == {"TerminalKey", "PaymentId", "Token"}
    assert body["Token"] == tbank_token(body, PASSWORD)
    assert payment.outcome is PaymentOutcome.SUCCEEDED
    assert payment.amount_kopecks == 15000
    assert payment.provider_payment_id == "3093639567"


def test_get_state_success_false_rejected():
    rec = Recorder(lambda r: httpx.Response(200, json={"Success": False, "ErrorCode": "7", "Message": "no"}))
    with pytest.raises(ProviderRejected):
        run(_client(rec).get_payment("1"))


def test_check_order():
    def reply(request):
        return httpx.Response(
            200,
            json={
                "Success": True,
                "ErrorCode": "0",
                "OrderId": "att-1",
                "Payments": [
                    {"PaymentId": 11, "Amount": 15000, "Status": "CONFIRMED", "Success": True, "ErrorCode": "0"},
                    {"PaymentId": "12", "Amount": 15000, "Status": "REJECTED", "Success": False, "ErrorCode": "1051"},
                ],
            },
        )

    rec = Recorder(reply)
    found = run(_client(rec).check_order("att-1"))
    assert str(rec.requests[0].url) == "https://tbank.test/v2/CheckOrder"
    body = rec.body()
    assert set(body) == {"TerminalKey", "OrderId", "Token"}
    assert body["Token"] == tbank_token(body, PASSWORD)
    assert [p.provider_payment_id for p in found] == ["11", "12"]
    assert [p.outcome for p in found] == [PaymentOutcome.SUCCEEDED, PaymentOutcome.CANCELED]
    assert all(p.reference == "att-1" for p in found)


def test_check_order_empty():
    rec = Recorder(lambda r: httpx.Response(200, json={"Success": True, "ErrorCode": "0", "Payments": []}))
    assert run(_client(rec).check_order("att-1")) == []


def test_check_order_timeout_unavailable():
    def raise_timeout(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(ProviderUnavailable):
        run(_client(Recorder(raise_timeout)).check_order("att-1"))


def test_client_passes_explicit_timeout():
    seen = []

    def reply(request):
        seen.append(request.extensions.get("timeout"))
        return _init_ok(request)

    run(_client(Recorder(reply)).create_payment(REQUEST))
    assert seen and seen[0]["connect"] == 3 and seen[0]["read"] == 10
