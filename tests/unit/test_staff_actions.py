"""What staff and the background jobs do, tried where it makes no sense (a breaker pass): actions by a staff user
who may only view, odd list filters, a refund that cannot reach its provider, a replay of an applied notification,
and a reconcile run with one merchant it cannot serve."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from coffee_payment.devices.models import ProviderAccount
from coffee_payment.integrations.http import set_transport
from coffee_payment.orders.display import order_reference
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, MakeState, OrderStatus
from coffee_payment.payments.models import Notification, NotificationVerdict
from tests.unit.factories import make_attempt, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CHANGELIST = "/admin/orders/order/"
NOTIFICATIONS = "/admin/payments/notification/"
AMOUNT = {"value": "150.00", "currency": "RUB"}


def _user(client: Client, *codenames: str, superuser: bool = False) -> Client:
    model = get_user_model()
    if superuser:
        user = model.objects.create_superuser("boss", "boss@example.com", "pw-for-tests-only")
    else:
        user = model.objects.create_user("clerk", "clerk@example.com", "pw-for-tests-only", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return re.findall(r'<li class="(?:error|info|success|warning)">(.*?)</li>', response.content.decode(), re.S)


@pytest.fixture
def provider():
    """YooKassa and Tmetr in one MockTransport: payments succeed (``provider.status[id]`` overrides), refunds
    succeed and make the payment refunded, makes are accepted; ``provider.calls`` lists (method, path)."""

    class Provider:
        status: dict[str, str] = {}
        calls: list[tuple[str, str]] = []

        def __call__(self, request: httpx.Request) -> httpx.Response:
            path = request.url.path
            self.calls.append((request.method, path))
            if path.endswith("/command/make"):
                return httpx.Response(200, json={"status": "accepted"})
            if request.method == "POST" and path.endswith("/refunds"):
                body = json.loads(request.content)
                self.status[body["payment_id"]] = "refunded"
                return httpx.Response(200, json={"id": "rf-1", "status": "succeeded", **body})
            payment_id = path.rsplit("/", 1)[1]
            status = self.status.get(payment_id, "succeeded")
            body = {"id": payment_id, "status": "succeeded", "paid": True, "amount": AMOUNT, "metadata": {}}
            if status == "refunded":
                body["refunded_amount"] = AMOUNT
            return httpx.Response(200, json=body)

    fake = Provider()
    fake.status, fake.calls = {}, []
    set_transport(httpx.MockTransport(fake))
    yield fake
    set_transport(None)


def _paid(status: str = OrderStatus.MAKE_UNKNOWN, payment_id: str = "yk-paid") -> Order:
    order = make_order(status=status)
    make_attempt(order, payment_id=payment_id, status=AttemptStatus.SUCCEEDED)
    return order


# --- actions need the change permission -------------------------------------------------------------------------


def test_a_staff_user_who_may_only_view_orders_cannot_mark_made_or_refund(client: Client, provider) -> None:
    viewer = _user(client, "view_order")
    order = _paid()
    assert viewer.get(CHANGELIST).status_code == 200
    for action in ("mark_made", "refund_through_provider"):
        viewer.post(CHANGELIST, {"action": action, "_selected_action": [str(order.pk)], "confirm": "yes"})
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_UNKNOWN and order.refund_result == ""
    assert provider.calls == []


def test_a_staff_user_who_may_change_orders_can_mark_made(client: Client) -> None:
    clerk = _user(client, "view_order", "change_order")
    order = _paid()
    clerk.post(CHANGELIST, {"action": "mark_made", "_selected_action": [str(order.pk)]})
    order.refresh_from_db()
    assert order.status == OrderStatus.SUCCESSFUL


def test_a_staff_user_who_may_only_view_notifications_cannot_reprocess_them(client: Client, provider) -> None:
    viewer = _user(client, "view_notification")
    stored = Notification.objects.create(provider="yookassa", body="{}", headers={}, verdict=NotificationVerdict.ERROR)
    viewer.post(NOTIFICATIONS, {"action": "reprocess", "_selected_action": [str(stored.pk)]})
    stored.refresh_from_db()
    assert stored.verdict == NotificationVerdict.ERROR and stored.processed_at is None


# --- reconcile: one merchant it cannot serve ---------------------------------------------------------------------


def _undecryptable(order: Order) -> None:
    """The merchant's stored secret matches no key in FIELD_ENCRYPTION_KEYS (a key removed too early)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_provideraccount SET secret = 'not-a-token' WHERE merchant_id = %s",
            [order.device.merchant_id],
        )


def test_reconcile_goes_on_past_an_attempt_it_cannot_poll_and_still_sweeps(provider, settings) -> None:
    settings.DISPENSE_SWEEP_GRACE_S = 0
    broken = make_order(status=OrderStatus.PENDING)
    make_attempt(broken, payment_id="yk-broken", age=timedelta(minutes=2))
    _undecryptable(broken)
    missed = make_order(status=OrderStatus.PENDING)  # its success notification was lost
    make_attempt(missed, payment_id="yk-missed", age=timedelta(minutes=2))
    owed = make_order(status=OrderStatus.MAKE_PENDING)  # its process died before sending the make
    Order.objects.filter(pk=owed.pk).update(make_state=MakeState.QUEUED, paid_at=owed.created_at)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 attempt"):  # the Job still fails, so the alert fires
        call_command("reconcile_payments", "--min-age", "0", stdout=io.StringIO(), stderr=err)
    assert "SecretUndecryptable" in err.getvalue()
    for order in (missed, owed):
        order.refresh_from_db()
        assert (order.status, order.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert sum(path.endswith("/command/make") for _, path in provider.calls) == 2


# --- refunds that cannot be done: a clear Russian message, never a 500 -------------------------------------------


def _refund(staff: Client, order: Order) -> list[str]:
    form = {"action": "refund_through_provider", "_selected_action": [str(order.pk)], "confirm": "yes"}
    response = staff.post(CHANGELIST, form, follow=True)
    assert response.status_code == 200
    return _messages(response)


def test_refund_when_the_merchant_secret_cannot_be_decrypted_is_a_message_not_a_500(client: Client, provider) -> None:
    staff = _user(client, superuser=True)
    staff.raise_request_exception = False
    order = _paid()
    _undecryptable(order)
    [message] = _refund(staff, order)
    assert "не расшифровывается" in message and "ничего не отправлено" in message
    assert provider.calls == []
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_UNKNOWN


def test_refund_messages_are_russian(client: Client, provider) -> None:
    staff = _user(client, superuser=True)
    no_account = _paid(payment_id="yk-no-account")
    ProviderAccount.objects.filter(merchant_id=no_account.device.merchant_id).delete()
    [message] = _refund(staff, no_account)
    assert message == f"{order_reference(no_account.id)}: " + (
        "У продавца нет учётной записи yookassa: провайдеру ничего не отправлено. Добавьте её или сделайте возврат "
        "в личном кабинете провайдера."
    )

    done = _paid(payment_id="yk-done")
    [message] = _refund(staff, done)
    assert message == f"{order_reference(done.id)}: возврат отправлен в YooKassa, ответ: succeeded. " + (
        "Статус заказа: Деньги возвращены."
    )
    # The same confirmation posted again (a double click, a second tab): refused with a message, nothing sent.
    refunds = [call for call in provider.calls if call[0] == "POST"]
    [message] = _refund(staff, done)
    assert message == f"{order_reference(done.id)}: пропущен — нет списанной оплаты для возврата."
    assert [call for call in provider.calls if call[0] == "POST"] == refunds


def test_a_provider_refusal_is_a_russian_message(client: Client, provider) -> None:
    staff = _user(client, superuser=True)
    order = _paid(payment_id="yk-refused")
    set_transport(
        httpx.MockTransport(lambda request: httpx.Response(400, json={"type": "error", "description": "too late"}))
    )
    [message] = _refund(staff, order)
    assert message.startswith(f"{order_reference(order.id)}: Провайдер не выполнил возврат:"), message
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_UNKNOWN and "refund FAILED" in order.refund_result


# --- re-processing a notification that was already applied -------------------------------------------------------


def test_reprocessing_an_applied_notification_keeps_its_verdict(client: Client, provider) -> None:
    staff = _user(client, superuser=True)
    order = make_order(status=OrderStatus.PENDING)
    make_attempt(order, payment_id="yk-notified")
    body = json.dumps(
        {"type": "notification", "event": "payment.succeeded", "object": {"id": "yk-notified", "status": "succeeded"}}
    )
    assert client.post("/v1/yook-pay-webhook", body, content_type="application/json").status_code == 200
    stored = Notification.objects.get()
    assert stored.verdict == NotificationVerdict.APPLIED and "paid → make_pending" in stored.detail
    response = staff.post(NOTIFICATIONS, {"action": "reprocess", "_selected_action": [str(stored.pk)]}, follow=True)
    assert _messages(response) == [
        f"Уведомление {stored.pk}: Применено (статус изменён) (already applied; not re-processed)"
    ]
    stored.refresh_from_db()
    assert stored.verdict == NotificationVerdict.APPLIED and "paid → make_pending" in stored.detail
    assert sum(path.endswith("/command/make") for _, path in provider.calls) == 1


# --- odd input in lists, filters and selections: never a 500 -----------------------------------------------------

LISTS = [
    CHANGELIST,
    "/admin/orders/orderneedingattention/",
    NOTIFICATIONS,
    "/admin/payments/paymentattempt/",
    "/admin/devices/device/",
    "/admin/devices/merchant/",
    "/admin/devices/provideraccount/",
]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "' OR 1=1 --"},
        {"q": "ё" * 5000},
        {"q": "%_\\"},
        {"q": "zzzz-zzzz"},
        {"status": "bogus"},
        {"id__exact": "not-a-uuid"},
        {"received_at__year": "abc"},
        {"p": "99999999999999999999"},
        {"o": "99"},
    ],
)
def test_odd_list_input_is_never_a_500(client: Client, params: dict[str, str]) -> None:
    staff = _user(client, superuser=True)
    staff.raise_request_exception = False
    _paid()
    for url in LISTS:
        assert staff.get(url, params).status_code in (200, 302), (url, params)


@pytest.mark.parametrize("params", [{"status": "\x00"}, {"device__payment_scenario": "a\x00"}, {"q": "\x00"}])
def test_a_nul_character_in_a_query_is_a_400(client: Client, params: dict[str, str]) -> None:
    """PostgreSQL text holds no NUL: ``?status=%00`` was a DataError there, a 500 (run with a postgres
    DATABASE_URL to see it)."""
    staff = _user(client, superuser=True)
    staff.raise_request_exception = False
    _paid()
    for url in (CHANGELIST, NOTIFICATIONS):
        response = staff.get(url, params)
        assert response.status_code == 400 and "Неверный запрос" in response.content.decode(), (url, params)


@pytest.mark.parametrize("selected", ["not-an-id", "' OR 1=1", "1" * 300])
def test_a_selection_that_holds_no_id_is_a_message_not_a_500(client: Client, provider, selected: str) -> None:
    staff = _user(client, superuser=True)
    staff.raise_request_exception = False
    order = _paid()
    posts = [
        (CHANGELIST, "mark_made"),
        (CHANGELIST, "refund_through_provider"),
        (NOTIFICATIONS, "reprocess"),
        ("/admin/devices/device/", "delete_selected"),
    ]
    for url, action in posts:
        form = {"action": action, "_selected_action": [str(order.pk), selected], "confirm": "yes"}
        response = staff.post(url, form, follow=True)
        assert response.status_code == 200, (url, action)
        assert "ничего не сделано" in " ".join(_messages(response)), (url, action)
    order.refresh_from_db()
    assert order.status == OrderStatus.MAKE_UNKNOWN and provider.calls == []


# --- "mark made" on a make the system still owns -----------------------------------------------------------------


def test_mark_made_leaves_a_make_still_queued_or_sending_to_the_system(client: Client, provider, settings) -> None:
    settings.DISPENSE_SWEEP_GRACE_S = 0
    staff = _user(client, superuser=True)
    orders = {}
    for make_state in (MakeState.QUEUED, MakeState.SENDING, MakeState.ACCEPTED):
        order = make_order(status=OrderStatus.MAKE_PENDING)
        Order.objects.filter(pk=order.pk).update(make_state=make_state, paid_at=order.created_at)
        orders[make_state] = order
    form = {"action": "mark_made", "_selected_action": [str(o.pk) for o in orders.values()]}
    response = staff.post(CHANGELIST, form, follow=True)
    warning = [m for m in _messages(response) if m.startswith("Не отмечены")]
    assert warning and all(order_reference(orders[s].id) in warning[0] for s in (MakeState.QUEUED, MakeState.SENDING))
    status = {state: Order.objects.get(pk=o.pk).status for state, o in orders.items()}
    assert status == {
        MakeState.QUEUED: OrderStatus.MAKE_PENDING,
        MakeState.SENDING: OrderStatus.MAKE_PENDING,
        MakeState.ACCEPTED: OrderStatus.SUCCESSFUL,
    }
    # The owed make is still sent (was: marked "made", the sweeper skipped it: paid, never made).
    call_command("sweep_dispenses", stdout=io.StringIO())
    assert sum(path.endswith("/command/make") for _, path in provider.calls) == 1
    assert Order.objects.get(pk=orders[MakeState.QUEUED].pk).make_state == MakeState.ACCEPTED


def test_a_refund_timeout_says_the_outcome_is_unknown_and_a_retry_is_the_same_refund(client: Client, provider) -> None:
    staff = _user(client, superuser=True)
    order = _paid(payment_id="yk-slow")
    keys: list[str] = []

    def timeout(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotence-Key"])
        raise httpx.ReadTimeout("no answer", request=request)

    set_transport(httpx.MockTransport(timeout))
    [message] = _refund(staff, order)
    assert message.startswith(f"{order_reference(order.id)}: Провайдер не ответил") and "мог быть выполнен" in message
    order.refresh_from_db()
    assert "refund OUTCOME UNKNOWN at yookassa" in order.refund_result and "FAILED" not in order.refund_result

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            keys.append(request.headers["Idempotence-Key"])
        return provider(request)

    set_transport(httpx.MockTransport(answer))
    [message] = _refund(staff, order)
    assert message.endswith("Статус заказа: Деньги возвращены.")
    assert len(keys) == 2 and keys[0] == keys[1]


def test_reprocessing_a_notification_pruned_meanwhile_is_a_message(client: Client, monkeypatch) -> None:
    staff = _user(client, superuser=True)
    stored = Notification.objects.create(provider="yookassa", body="{}", headers={}, verdict=NotificationVerdict.ERROR)

    async def pruned(notification_id: int):  # prune_notifications deleted it after the action's query
        raise Notification.DoesNotExist

    monkeypatch.setattr("coffee_payment.payments.admin.notification_replay", pruned)
    response = staff.post(NOTIFICATIONS, {"action": "reprocess", "_selected_action": [str(stored.pk)]}, follow=True)
    assert response.status_code == 200
    assert _messages(response) == [f"Уведомления {stored.pk} больше нет (удалено по сроку хранения)."]


# --- the record of a payment cannot be deleted from the admin ----------------------------------------------------


def test_a_paid_order_its_payment_and_notifications_cannot_be_deleted_from_the_admin(client: Client) -> None:
    staff = _user(client, superuser=True)
    order = _paid()
    attempt = order.attempts.get()
    notification = Notification.objects.create(provider="yookassa", body="{}", headers={}, attempt=attempt)
    # Was: the attempt went first, then the order it no longer protected (on_delete=PROTECT), then the inbox.
    for url, pk in (
        ("/admin/payments/paymentattempt/", attempt.pk),
        (NOTIFICATIONS, notification.pk),
        (CHANGELIST, order.pk),
    ):
        response = staff.post(url, {"action": "delete_selected", "_selected_action": [str(pk)], "post": "yes"})
        assert response.status_code in (200, 302), url
        assert staff.get(f"{url}{pk}/delete/").status_code in (302, 403), url
    assert Order.objects.filter(pk=order.pk).exists()
    assert order.attempts.filter(pk=attempt.pk).exists()
    assert Notification.objects.filter(pk=notification.pk).exists()
