"""The status JSON's one-query read (``selectors.status_row``) says what the ORM read says, in every state that
changes the body: created, pending with and without a live payment page, pending past expiry, paid; and its
refresh hint is true exactly when ``payment_refresh_if_stale`` could claim a provider poll (issue 14)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.translation import override

from coffee_payment.orders.selectors import order_find, order_status_json, status_body, status_row
from coffee_payment.orders.state import AttemptStatus, OrderStatus
from coffee_payment.payments.models import PaymentAttempt
from coffee_payment.payments.services import _claim_refresh
from tests.unit.factories import make_attempt, make_order

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def _same_body(order_id: str) -> dict:
    orm = order_status_json(order_find(order_id))
    raw = status_body(status_row(order_id))
    assert raw == orm
    return raw


@pytest.mark.parametrize("language", ["ru", "en"])
def test_created_paid_and_expired_orders_read_the_same(language: str) -> None:
    with override(language):
        for status, expires_in in (
            (OrderStatus.CREATED, timedelta(minutes=15)),
            (OrderStatus.MAKE_PENDING, timedelta(minutes=15)),
            (OrderStatus.CREATED, timedelta(minutes=-1)),
        ):
            order = make_order(status=status, expires_in=expires_in, show_provider_name=True, location="Hall")
            body = _same_body(str(order.id))
            assert body["expired"] is (expires_in < timedelta(0))


def test_pending_with_a_live_page_offers_continue_until_expiry() -> None:
    order = make_order(status=OrderStatus.PENDING)
    attempt = make_attempt(order)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(confirmation_url="https://pay.example/1")
    assert _same_body(str(order.id))["continue_url"] == "https://pay.example/1"
    newer = make_attempt(order, payment_id="pay-2")
    PaymentAttempt.objects.filter(pk=newer.pk).update(confirmation_url="https://pay.example/2")
    assert _same_body(str(order.id))["action"] == "continue"
    assert status_row(str(order.id)).continue_url == "https://pay.example/2"
    type(order).objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _same_body(str(order.id))["continue_url"] == ""


def test_unknown_and_malformed_ids_read_nothing() -> None:
    assert status_row("not-a-uuid") is None
    assert status_row("3319605c-eca1-4687-9aa0-5b5af8974d7e") is None


def test_refresh_hint_is_true_exactly_when_a_claim_can_win(settings) -> None:
    settings.PAYMENT_REFRESH_INTERVAL_S = 5.0
    order = make_order(status=OrderStatus.PENDING)
    make_attempt(order, age=timedelta(seconds=1))  # too young: the notification is not overdue yet
    assert status_row(str(order.id)).refresh_due is False
    assert _claim_refresh(str(order.id)) is None
    old = make_attempt(order, payment_id="pay-2", age=timedelta(seconds=30))
    assert status_row(str(order.id)).refresh_due is True
    assert _claim_refresh(str(order.id)) == str(old.id)  # the claim polls it now …
    assert status_row(str(order.id)).refresh_due is False  # … and not again within the interval
    assert _claim_refresh(str(order.id)) is None
    PaymentAttempt.objects.filter(pk=old.pk).update(status=AttemptStatus.SUCCEEDED)
    assert status_row(str(order.id)).refresh_due is False
    paid = make_order(status=OrderStatus.PAID)
    make_attempt(paid, payment_id="pay-3", age=timedelta(seconds=30))
    assert status_row(str(paid.id)).refresh_due is False  # only a pending order polls
    no_id = make_order(status=OrderStatus.PENDING)
    make_attempt(no_id, payment_id=None, age=timedelta(seconds=30))
    assert status_row(str(no_id.id)).refresh_due is False
    assert _claim_refresh(str(no_id.id)) is None


@pytest.mark.django_db(transaction=True)
def test_status_json_under_the_lean_handler_makes_one_hop_and_returns_its_connection(monkeypatch) -> None:
    """Served by the lean handler, a poll makes one hop — the read, on the read executor, its connection returned
    to the pool at once — so its request thread stays unused and no signal hop follows (serving/lean.py). The body
    is the one the test client (a sync caller: the read on its own thread) gets."""
    import asyncio

    import asgiref.sync
    import httpx

    from coffee_payment.serving.lean import LeanASGIHandler

    order = make_order()
    calls: list[tuple[str, bool]] = []
    wrappers: list = []

    def recording_read(order_id: str):
        from django.db import connections

        wrappers.append(connections["default"])  # this thread's DatabaseWrapper (not the thread-following proxy)
        return status_row(order_id)

    monkeypatch.setattr("coffee_payment.orders.views.status_row", recording_read)
    original = asgiref.sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append((getattr(self.func, "__name__", "?"), self._thread_sensitive))
        return await original(self, *args, **kwargs)

    handler = LeanASGIHandler()

    async def poll() -> httpx.Response:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(f"/v1/order-status/{order.id}")

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting)
    response = asyncio.run(poll())
    monkeypatch.undo()
    assert response.status_code == 200, response.text
    assert calls == [("step", False)]
    (thread,) = handler.threads._idle
    assert not thread.used
    assert len(wrappers) == 1 and wrappers[0].connection is None, "the read left its connection open"
    body = response.json()
    from django.test import Client

    expected = Client().get(f"/v1/order-status/{order.id}").json()
    assert {k: v for k, v in body.items() if k != "server_time"} == {
        k: v for k, v in expected.items() if k != "server_time"
    }


@contextlib.contextmanager
def _pool_of_one(*, timeout: float):
    """On PostgreSQL, the psycopg pool shrunk to one connection with ``timeout`` seconds of wait for the block,
    then restored; nothing on SQLite (no pool)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    pool_options = connection.settings_dict["OPTIONS"]["pool"]
    saved = dict(pool_options)
    connection.close()
    connection.close_pool()
    pool_options.update(min_size=0, max_size=1, timeout=timeout)
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        pool_options.clear()
        pool_options.update(saved)


@pytest.mark.django_db(transaction=True)
def test_a_refresh_that_failed_does_not_wait_for_a_second_pooled_connection(monkeypatch) -> None:
    """The refresh path runs on the request's thread (``_claim_refresh``, ``_attempt_context``), whose connection
    stays checked out until ``request_finished``. When the provider poll then fails (outage), the re-read must not
    need a second pooled connection: with the pool's last connection held by that thread, it would wait
    ``DB_POOL_TIMEOUT_S`` and answer 503 — every concurrent poll of an overdue order, at once, during an outage.
    So the re-read runs on that thread (any backend); on PostgreSQL, one pooled connection serves the whole poll."""
    import asyncio
    import threading
    import time

    import httpx

    from coffee_payment.payments import services
    from coffee_payment.payments.providers.base import ProviderUnavailable
    from coffee_payment.serving.lean import LeanASGIHandler

    order = make_order(status=OrderStatus.PENDING)
    make_attempt(order, age=timedelta(seconds=30))
    threads: list[tuple[str, str]] = []

    class Down:
        async def get_payment(self, payment_id: str):
            raise ProviderUnavailable("provider down")

    def recorded(name, fn):
        def call(*args, **kwargs):
            threads.append((name, threading.current_thread().name))
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(services, "provider_client", lambda *a, **k: Down())
    monkeypatch.setattr(services, "_claim_refresh", recorded("claim", services._claim_refresh))
    monkeypatch.setattr("coffee_payment.orders.views.status_row", recorded("read", status_row))

    async def poll() -> httpx.Response:
        transport = httpx.ASGITransport(app=LeanASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(f"/v1/order-status/{order.id}")

    with _pool_of_one(timeout=2.0):
        started = time.monotonic()
        response = asyncio.run(poll())
        took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] == OrderStatus.PENDING
    assert [name for name, _ in threads] == ["read", "claim", "read"]
    assert threads[2][1] == threads[1][1]  # the re-read on the thread holding the refresh's connection
    assert took < 1.5


@pytest.mark.django_db(transaction=True)
def test_polls_waiting_for_the_database_leave_the_loop_s_default_executor_free(monkeypatch) -> None:
    """With the pool exhausted (e.g. initiate-payment requests holding their connections across a slow provider
    call), every status poll waits up to ``DB_POOL_TIMEOUT_S`` for one. Those waits must not fill the event loop's
    default executor: it also runs ``getaddrinfo`` for every new outbound connection (the Tmetr make send, under
    its hard budget) and the durable make's database steps (``run_db_step``). Any backend: the read blocks until
    released; on PostgreSQL also for real, on a pool of one connection held elsewhere."""
    import asyncio
    import threading
    import time

    import httpx
    from django.db import connection

    from coffee_payment.serving.lean import LeanASGIHandler

    order = make_order()
    postgres = connection.vendor == "postgresql"
    release = threading.Event()

    def blocked_read(order_id: str):
        release.wait(10)
        return status_row(order_id)

    if not postgres:
        monkeypatch.setattr("coffee_payment.orders.views.status_row", blocked_read)

    async def polls_and_a_default_executor_call() -> tuple[float, list[int]]:
        transport = httpx.ASGITransport(app=LeanASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            polls = [asyncio.create_task(client.get(f"/v1/order-status/{order.id}")) for _ in range(40)]
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, lambda: None)  # as loop.getaddrinfo does
            waited = time.monotonic() - started
            release.set()
            return waited, [response.status_code for response in await asyncio.gather(*polls)]

    try:
        with _pool_of_one(timeout=1.0):
            if postgres:
                connection.ensure_connection()  # the pool's only connection, held elsewhere
            waited, codes = asyncio.run(polls_and_a_default_executor_call())
    finally:
        release.set()
    assert set(codes) == ({503} if postgres else {200})  # on PostgreSQL each poll waited and answered "busy"
    assert waited < 0.5
