"""The bounded inbox (issue 11): cheap rejects before storage, rejected bodies stored truncated with their SHA-256,
per-address rate limits on the webhooks and on ``POST /v1/initiate-payment``, and ``prune_notifications``."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from coffee_payment.devices.models import Merchant, ProviderAccount
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments.inbox import REJECTED_BODY_CHARS
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt, RateWindow
from coffee_payment.payments.notifications import notification_replay
from coffee_payment.payments.providers.tbank_token import tbank_token
from coffee_payment.payments.ratelimit import rate_hit
from coffee_payment.payments.retention import RetentionPolicy, notifications_prune
from tests.unit.factories import make_attempt, make_order

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

JSON = "application/json"


def _post(client, path: str, body: bytes, *, content_type: str = JSON, addr: str = "203.0.113.9"):
    return client.post(path, data=body, content_type=content_type, REMOTE_ADDR=addr)


def _only_row() -> Notification:
    (row,) = Notification.objects.all()
    return row


@override_settings(NOTIFICATION_MAX_BODY_BYTES=4096)
def test_an_oversized_body_is_413_and_stored_truncated_with_its_hash(client):
    body = b'{"type": "notification", "pad": "' + b"x" * 10_000 + b'"}'
    response = _post(client, "/v1/yook-pay-webhook", body)
    assert response.status_code == 413
    row = _only_row()
    assert row.verdict == NotificationVerdict.REJECTED
    assert len(row.body) == REJECTED_BODY_CHARS and row.body_truncated
    assert row.body_bytes == len(body)
    assert row.body_sha256 == hashlib.sha256(body).hexdigest()


def test_a_body_that_is_not_json_by_its_content_type_is_415(client):
    response = _post(client, "/v1/tbank-webhook", b"TerminalKey=x&Status=CONFIRMED", content_type="text/plain")
    assert response.status_code == 415
    assert _only_row().verdict == NotificationVerdict.REJECTED


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/yook-pay-webhook", b"[" + b"1," * 20_000 + b"1]"),
        ("/v1/yook-pay-webhook", json.dumps({"type": "notification", "event": "x", "junk": "y" * 30_000}).encode()),
        ("/v1/tbank-webhook", json.dumps({"Status": "CONFIRMED", "junk": "z" * 30_000}).encode()),
    ],
)
def test_a_body_of_the_wrong_shape_is_400_and_never_stored_whole(client, path, body):
    response = _post(client, path, body)
    assert response.status_code == 400
    row = _only_row()
    assert row.verdict == NotificationVerdict.REJECTED and row.processed_at is not None
    assert len(row.body) <= REJECTED_BODY_CHARS and row.body_truncated
    assert row.body_sha256 == hashlib.sha256(body).hexdigest()


def test_a_bad_tbank_token_is_refused_before_processing(client):
    merchant = Merchant.objects.create(name="M")
    ProviderAccount.objects.create(merchant=merchant, provider="tbank", account_id="TerminalA", secret="password")
    fields = {"TerminalKey": "TerminalA", "PaymentId": 77, "Status": "CONFIRMED", "Amount": 100, "OrderId": "o"}
    forged = {**fields, "Token": tbank_token(fields, "guessed")}
    assert _post(client, "/v1/tbank-webhook", json.dumps(forged).encode()).status_code == 400
    row = _only_row()
    assert (row.verdict, row.detail) == (NotificationVerdict.REJECTED, "bad Token")
    signed = {**fields, "Token": tbank_token(fields, "password")}
    assert _post(client, "/v1/tbank-webhook", json.dumps(signed).encode()).status_code == 200  # no such payment
    assert Notification.objects.latest("pk").verdict == NotificationVerdict.UNKNOWN_PAYMENT


def test_a_well_formed_notification_for_no_payment_of_ours_keeps_only_the_start_of_its_body(client):
    claim = {
        "type": "notification",
        "event": "payment.succeeded",
        "object": {"id": "2f0000aa-000f-5000-9000-1b2c3d4e5f60", "status": "succeeded", "pad": "p" * 20_000},
    }
    body = json.dumps(claim).encode()
    assert _post(client, "/v1/yook-pay-webhook", body).status_code == 200
    row = _only_row()
    assert row.verdict == NotificationVerdict.UNKNOWN_PAYMENT
    assert len(row.body) == REJECTED_BODY_CHARS and row.body_truncated
    assert row.body_sha256 == hashlib.sha256(body).hexdigest() and row.body_bytes == len(body)


@override_settings(RATE_LIMIT_WEBHOOK_PER_MINUTE=3)
def test_webhooks_are_rate_limited_per_client_address_before_storage(client):
    answers = [_post(client, "/v1/tbank-webhook", b"{}").status_code for _ in range(5)]
    assert answers == [400, 400, 400, 429, 429]
    limited = _post(client, "/v1/tbank-webhook", b"{}")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert Notification.objects.count() == 3  # the flood itself is not stored
    assert _post(client, "/v1/tbank-webhook", b"{}", addr="198.51.100.1").status_code == 400  # another client
    assert _post(client, "/v1/yook-pay-webhook", b"{}").status_code == 400  # another endpoint, its own count


@override_settings(RATE_LIMIT_INITIATE_PER_MINUTE=2)
def test_initiate_payment_is_rate_limited_per_client_address(client):
    def tap(addr: str = "203.0.113.9"):
        return _post(client, "/v1/initiate-payment", json.dumps({"order_id": "nope"}).encode(), addr=addr)

    assert [tap().status_code for _ in range(3)] == [404, 404, 429]
    assert tap().json()["error"].startswith("too many requests")
    assert tap("198.51.100.1").status_code == 404


def test_rate_hit_counts_per_window_and_zero_turns_it_off():
    t = 1_000_040.0  # 20 s into window 16667
    assert [rate_hit(scope="s", client="a", limit=2, now=t).allowed for _ in range(3)] == [True, True, False]
    assert rate_hit(scope="s", client="a", limit=2, now=t).retry_after_s == 40
    assert rate_hit(scope="s", client="a", limit=2, now=t + 60).allowed  # the next window
    assert rate_hit(scope="s", client=None, limit=1, now=t).allowed  # unknown addresses share one count
    before = RateWindow.objects.count()
    assert all(rate_hit(scope="s", client="a", limit=0, now=t).allowed for _ in range(5))
    assert RateWindow.objects.count() == before


def _notification(verdict: str, age_days: float, attempt: PaymentAttempt | None = None) -> int:
    row = Notification.objects.create(provider="yookassa", body="{}", verdict=verdict, attempt=attempt)
    Notification.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=age_days))
    return row.pk


def _attempt(status: str) -> PaymentAttempt:
    order = make_order(status=status, expires_in=timedelta(0))
    return make_attempt(order, payment_id=f"p-{status}", status=AttemptStatus.SUCCEEDED)


def test_prune_keeps_each_class_its_days_and_never_what_staff_still_need():
    kept = {
        _notification(NotificationVerdict.REJECTED, 6),
        _notification(NotificationVerdict.APPLIED, 29),
        _notification(NotificationVerdict.ERROR, 179),
        _notification(NotificationVerdict.RETRY, 100),
        _notification(NotificationVerdict.RECEIVED, 31),
        _notification(NotificationVerdict.APPLIED, 400, _attempt(OrderStatus.MAKE_UNKNOWN)),  # needs attention
    }
    gone = {
        _notification(NotificationVerdict.REJECTED, 8),
        _notification(NotificationVerdict.APPLIED, 31, _attempt(OrderStatus.SUCCESSFUL)),
        _notification(NotificationVerdict.NO_CHANGE, 31),
        _notification(NotificationVerdict.UNKNOWN_PAYMENT, 31),
        _notification(NotificationVerdict.ERROR, 181),
    }
    policy = RetentionPolicy(processed_days=30, rejected_days=7, unresolved_days=180)
    assert notifications_prune(policy=policy, dry_run=True) == {"rejected": 1, "processed": 3, "unresolved": 1}
    assert set(Notification.objects.values_list("pk", flat=True)) == kept | gone
    assert notifications_prune(policy=policy, batch_size=2) == {"rejected": 1, "processed": 3, "unresolved": 1}
    assert set(Notification.objects.values_list("pk", flat=True)) == kept


def test_unresolved_notifications_are_never_pruned_before_processed_ones(capsys):
    error = _notification(NotificationVerdict.ERROR, 8)  # past --unresolved-days 5, within --days 10
    _notification(NotificationVerdict.APPLIED, 12)
    call_command("prune_notifications", "--days", "10", "--unresolved-days", "5")
    assert list(Notification.objects.values_list("pk", flat=True)) == [error]
    assert "deleted 0 rejected, 1 processed, 0 unresolved" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_truncated_notification_is_not_re_processed_and_is_found_by_its_hash(admin_client):
    body = b"x" * 5000
    assert _post(admin_client, "/v1/yook-pay-webhook", body).status_code == 400
    row = _only_row()
    verdict = asyncio.run(notification_replay(row.pk))
    assert (verdict.verdict, verdict.http_status) == (NotificationVerdict.REJECTED, 200)
    assert "not re-processed" in verdict.detail
    digest = hashlib.sha256(body).hexdigest()
    page = admin_client.get(f"/{settings.ADMIN_URL_PREFIX}/payments/notification/?q={digest}")
    assert page.status_code == 200 and page.context["cl"].result_count == 1


def _break_the_stored_secret(account_id: str) -> None:
    """The account's secret as if its key had been removed from FIELD_ENCRYPTION_KEYS before rotate_secrets ran."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_provideraccount SET secret = %s WHERE account_id = %s", ["gAAAAABnot-a-token", account_id]
        )


@pytest.mark.parametrize("provider", ["yookassa", "tbank"])
def test_a_secret_no_key_decrypts_is_our_failure_503_stored_whole_for_a_replay(client, provider):
    """Reading the merchant's account (the Token check for TBank, the account processing will use for YooKassa)
    fails to decrypt its secret: 503 so the provider retries, the row kept whole with the reason — never a 500
    with nothing stored (the YooKassa case regressed so when the inbox began reading the account)."""
    order = make_order(provider=provider, account_id=f"{provider}-undecryptable", secret="password")
    attempt = make_attempt(order, payment_id="700009" if provider == "tbank" else "yk-undecryptable")
    if provider == "tbank":
        fields = {"TerminalKey": f"{provider}-undecryptable", "OrderId": str(attempt.id), "Success": True}
        fields |= {"Status": "CONFIRMED", "PaymentId": 700009, "ErrorCode": "0", "Amount": order.price_kopecks}
        body, path = {**fields, "Token": tbank_token(fields, "password")}, "/v1/tbank-webhook"
    else:
        obj = {"id": "yk-undecryptable", "status": "succeeded", "metadata": {"attempt_id": str(attempt.id)}}
        body, path = {"type": "notification", "event": "payment.succeeded", "object": obj}, "/v1/yook-pay-webhook"
    _break_the_stored_secret(f"{provider}-undecryptable")
    raw = json.dumps(body).encode()
    response = _post(client, path, raw)
    assert response.status_code == 503
    row = _only_row()
    assert row.verdict == NotificationVerdict.ERROR and "SecretUndecryptable" in row.detail
    assert not row.body_truncated and row.body.encode() == raw  # whole: staff can replay it once the key is back
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.PENDING
