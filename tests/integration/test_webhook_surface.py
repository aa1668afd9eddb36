"""The webhook surface under attack, on the real stack (gunicorn with 2 workers, SQLite and PostgreSQL), issue 11:
junk notifications do not fill the database, a storm of notifications for one payment does not become a storm of
authenticated provider calls (counted by the sandbox), and a burst of Pay taps on one machine opens at most
``DEVICE_OPEN_PAYMENTS_MAX`` provider payments."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from devtools.pg import temporary_database
from devtools.stack import Stack, StackConfig
from tests.integration.conftest import FAST_TIMEOUTS
from tests.integration.flow import checkout, initiate, makes_for, provider_payments, scan, scan_with_uuid, wait_status
from tools.container.testsupport import query

pytestmark = pytest.mark.timeout(300)

OPEN_PAYMENTS_MAX = 3
ENV = {
    **FAST_TIMEOUTS,
    "RATE_LIMIT_WEBHOOK_PER_MINUTE": "5000",  # the storms below come from one address; limits: tests/unit
    "RATE_LIMIT_INITIATE_PER_MINUTE": "100",
    "DEVICE_OPEN_PAYMENTS_MAX": str(OPEN_PAYMENTS_MAX),
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def surface(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir: Path = tmp_path_factory.mktemp(f"surface-{request.param}")
    env = dict(ENV)
    config = StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")
    if request.param == "postgres":
        with temporary_database("coffee_surface", migrated=True) as url:
            env["DATABASE_URL"] = url
            with Stack(config) as running:
                yield running
    else:
        with Stack(config) as running:
            yield running


@pytest.fixture
def app(surface: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=surface.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def sandbox(surface: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=surface.sandbox_url, timeout=60) as client:
        yield client
        client.post("/_sandbox/config", json={"notifications": {"duplicate": 1}}).raise_for_status()


def _storage_bytes(stack: Stack) -> int:
    url = stack.env.get("DATABASE_URL")
    if url:
        return int(query(url, "SELECT pg_total_relation_size('payments_notification')")[0][0])
    # SQLite: fold the write-ahead log into the database first. The WAL's size says how many page writes
    # happened since the last checkpoint (the per-IP rate-limit upserts rewrite the same rows), not what is
    # stored; the main file after a checkpoint does.
    database = stack.config.var_dir / "coffee.sqlite3"
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return os.path.getsize(database)


def _junk(i: int) -> tuple[bytes, str]:
    """60 KB bodies of four kinds: not JSON, JSON of no provider's shape, a well-formed notification for no
    payment of ours, and the right shape sent as text/plain."""
    pad = os.urandom(30_000).hex()
    kind = i % 4
    if kind == 0:
        return os.urandom(60_000), "application/json"
    if kind == 1:
        return json.dumps({"junk": pad}).encode(), "application/json"
    claim = {"type": "notification", "event": "payment.succeeded", "object": {"id": f"junk-{i}", "pad": pad}}
    return json.dumps(claim).encode(), "application/json" if kind == 2 else "text/plain"


def test_300_junk_notifications_of_60_kb_grow_storage_by_less_than_a_few_mb(surface, app):
    before = _storage_bytes(surface)

    def post(i: int) -> int:
        body, content_type = _junk(i)
        return app.post("/v1/yook-pay-webhook", content=body, headers={"content-type": content_type}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(post, range(300)))
    assert all(status < 500 for status in answers), sorted(set(answers))
    grown = _storage_bytes(surface) - before
    print(f"300 junk notifications of 60 KB: storage grew {grown} bytes")  # shown with `pytest -s`
    assert grown < 3 * 1024 * 1024, f"storage grew {grown} bytes for 300 junk bodies (~18 MB if stored whole)"


def _api_calls(sandbox: httpx.Client) -> dict[str, int]:
    return sandbox.get("/_sandbox/api-calls").json()


@pytest.mark.parametrize(("provider", "operation"), [("yookassa", "yookassa.get"), ("tbank", "tbank.get_state")])
def test_100_notifications_for_one_payment_make_at_most_a_few_provider_gets(app, sandbox, provider, operation):
    order_id, machine_uuid = scan_with_uuid(app, provider)
    checkout(initiate(app, order_id), "pay")
    wait_status(app, order_id, "make_pending")
    (payment,) = provider_payments(sandbox, provider, order_id)
    payment_id = payment.get("id") or payment["payment_id"]
    sandbox.post("/_sandbox/config", json={"notifications": {"duplicate": 20}}).raise_for_status()
    before = _api_calls(sandbox).get(operation, 0)
    records = []
    for _ in range(5):  # 5 x 20 concurrent copies of the current notification
        response = sandbox.post(f"/_sandbox/payments/{provider}/{payment_id}/notify")
        assert response.status_code == 200, response.text
        records += response.json()
    assert len(records) == 100 and all(r["ok"] for r in records), {r["http_status"] for r in records}
    fetched = _api_calls(sandbox).get(operation, 0) - before
    assert fetched <= 5, f"{fetched} {operation} calls for 100 notifications of one payment"
    assert len(makes_for(sandbox, machine_uuid)) == 1


def test_40_pay_taps_in_one_second_on_one_machine_open_at_most_the_bound(app, sandbox):
    orders = [scan(app, "tbank") for _ in range(40)]

    def tap(order_id: str) -> httpx.Response:
        return app.post("/v1/initiate-payment", json={"order_id": order_id})

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(tap, orders))
    opened = [order_id for order_id in orders if provider_payments(sandbox, "tbank", order_id)]
    assert 1 <= len(opened) <= OPEN_PAYMENTS_MAX
    assert sum(r.status_code == 200 for r in answers) == len(opened)
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) == 40 - len(opened)
    assert all(r.json()["error"] for r in refused)
    again = tap(opened[0])  # the same order's tap again: the live payment, not a refusal
    assert again.status_code == 200 and again.json()["redirect_url"]
