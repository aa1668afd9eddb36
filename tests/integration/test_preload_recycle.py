"""Preload on and off, on PostgreSQL: every worker serves a provider call and a database query after recycles and
after HUP; a sync request blocked on a lock while its worker recycles ends in a clean 503, no WORKER TIMEOUT."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from devtools.pg import temporary_database
from devtools.processes import child_pids, wait_until
from devtools.stack import Stack, StackConfig
from tests.integration.conftest import FAST_TIMEOUTS
from tests.integration.flow import initiate, scan

pytestmark = pytest.mark.serial  # lock, drain and heartbeat bounds of a few seconds, judged from the log
MAX_REQUESTS = 40
LOCK_TIMEOUT_S = 4  # below DB_STATEMENT_TIMEOUT_S; the test recycles the worker within it, on a busy machine too
BAD_LOG_LINES = ("WORKER TIMEOUT", "Event loop is closed", "Traceback", "Perhaps out of memory", "exited with code")


@pytest.fixture(scope="module", params=["preload", "no-preload"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A PostgreSQL stack with 2 workers recycling every ~40 requests, short database bounds."""
    var_dir: Path = tmp_path_factory.mktemp(f"var-{request.param}")
    env = {
        **FAST_TIMEOUTS,
        "GUNICORN_PRELOAD": "1" if request.param == "preload" else "0",
        "GUNICORN_MAX_REQUESTS": str(MAX_REQUESTS),
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
        "GUNICORN_TIMEOUT": "10",
        "DB_STATEMENT_TIMEOUT_S": "5",
        "DB_LOCK_TIMEOUT_S": str(LOCK_TIMEOUT_S),
        "DB_POOL_TIMEOUT_S": "5",
    }
    with temporary_database("coffee_preload", migrated=True) as url:
        env["DATABASE_URL"] = url
        with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")) as running:
            running.database_url = url
            yield running


def _logs(stack: Stack) -> str:
    return (stack.config.log_to / "server.log").read_text(errors="replace")


def _workers(stack: Stack) -> set[int]:
    return set(child_pids(stack.server.pid))


def _recycles(stack: Stack) -> int:
    return _logs(stack).count("reached, recycling")


def _flow_on_every_worker(stack: Stack, *, timeout: float = 60) -> set[str]:
    """Scan (Tmetr price + order row) and tap Pay (YooKassa create + attempt row) on fresh connections until
    every current worker pid has served both with 200s; the pids that did."""
    wanted = {str(pid) for pid in _workers(stack)}
    served: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= served and time.monotonic() < deadline:
        with httpx.Client(base_url=stack.base_url, timeout=20) as app:  # a new connection each round
            order_id = scan(app, "yookassa")
            response = app.post("/v1/initiate-payment", json={"order_id": order_id})
            assert response.status_code == 200, response.text
            served.add(response.headers["x-worker-pid"])
        wanted = {str(pid) for pid in _workers(stack)} if not wanted <= served else wanted
    assert wanted <= served, (wanted, served)
    return served


def _push_requests(stack: Stack, count: int, *, per_connection: int = 5) -> None:
    """``count`` probe requests, ``per_connection`` on each new connection (spread over the workers)."""
    for _ in range(0, count, per_connection):
        with httpx.Client(base_url=stack.base_url, timeout=20) as client:
            for _ in range(per_connection):
                assert client.get("/livez").status_code == 200


@pytest.mark.timeout(180)
def test_provider_call_and_query_work_in_every_worker_after_recycle_and_hup(stack: Stack):
    first = _workers(stack)
    _flow_on_every_worker(stack)
    recycles = _recycles(stack)
    _push_requests(stack, MAX_REQUESTS * 6)
    wait_until(lambda: _recycles(stack) >= recycles + 2, timeout=30, what="two recycles")
    wait_until(lambda: len(_workers(stack)) == 2, timeout=30, what="2 workers")
    assert not first <= _workers(stack), "workers were replaced"
    _flow_on_every_worker(stack)

    before_hup = _workers(stack)
    os.kill(stack.server.pid, signal.SIGHUP)
    wait_until(lambda: len(_workers(stack)) == 2 and not _workers(stack) & before_hup, timeout=40, what="new workers")
    _flow_on_every_worker(stack)
    logs = _logs(stack)
    assert [line for line in logs.splitlines() if any(bad in line for bad in BAD_LOG_LINES)] == []


@pytest.mark.timeout(120)
def test_request_blocked_on_a_lock_while_its_worker_recycles_ends_in_503(stack: Stack):
    with httpx.Client(base_url=stack.base_url, timeout=20) as app:
        order_id = scan(app, "yookassa")
        initiate(app, order_id)
    outcome: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=stack.base_url, timeout=30) as blocked_client:
        pid = blocked_client.get("/livez").headers["x-worker-pid"]
        with psycopg.connect(stack.database_url) as locker:
            locker.execute("LOCK TABLE orders_order IN ACCESS EXCLUSIVE MODE")  # held until the block ends

            def blocked() -> None:
                outcome["response"] = blocked_client.get(f"/v1/order-status/{order_id}")

            thread = threading.Thread(target=blocked)
            thread.start()
            deadline = time.monotonic() + LOCK_TIMEOUT_S - 0.5
            while f"Worker {pid} shutdown 1/3" not in _logs(stack) and time.monotonic() < deadline:
                _push_requests(stack, 5)
            recycled_while_blocked = f"Worker {pid} shutdown 1/3" in _logs(stack)
            thread.join(timeout=20)
            locker.rollback()
    response = outcome["response"]
    assert response.status_code == 503, response.text
    assert response.json()["reason"] == "database lock_timeout"
    assert response.headers["retry-after"] == "1"
    assert recycled_while_blocked, "the worker did not start recycling while the request was blocked"
    wait_until(lambda: f"Worker exiting (pid: {pid})" in _logs(stack), timeout=20, what="the worker exited")
    logs = _logs(stack)
    assert "WORKER TIMEOUT" not in logs and f"Worker (pid:{pid}) exited with code" not in logs


@pytest.fixture(scope="module")
def over_drain_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """1 worker whose lock bound (9 s) outlasts its drain (3 s) plus its heartbeat timeout (4 s): a misconfiguration
    (check --deploy E010) that shows the heartbeat carrying the worker until its blocked thread ends (within
    GUNICORN_GRACEFUL_TIMEOUT, 12 s). Without it the arbiter would kill the worker ~7 s after the drain began."""
    var_dir: Path = tmp_path_factory.mktemp("var-over-drain")
    env = {
        **FAST_TIMEOUTS,
        "GUNICORN_WORKERS": "1",
        "GUNICORN_TIMEOUT": "4",
        "GUNICORN_GRACEFUL_TIMEOUT": "12",
        "GUNICORN_MAX_REQUESTS": str(MAX_REQUESTS),
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
        "PROVIDER_READ_TIMEOUT_S": "1",
        "TMETR_READ_TIMEOUT_S": "1",
        "DB_STATEMENT_TIMEOUT_S": "11",
        "DB_LOCK_TIMEOUT_S": "9",
        "DB_POOL_TIMEOUT_S": "2",
    }
    with temporary_database("coffee_overdrain", migrated=True) as url:
        env["DATABASE_URL"] = url
        with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")) as running:
            running.database_url = url
            yield running


@pytest.mark.timeout(120)
def test_thread_blocked_past_the_drain_keeps_the_heartbeat_no_worker_timeout(over_drain_stack: Stack):
    stack = over_drain_stack
    with httpx.Client(base_url=stack.base_url, timeout=20) as app:
        order_id = scan(app, "yookassa")
    (pid,) = _workers(stack)
    with httpx.Client(base_url=stack.base_url, timeout=30) as blocked_client:
        with psycopg.connect(stack.database_url) as locker:
            locker.execute("LOCK TABLE orders_order IN ACCESS EXCLUSIVE MODE")
            thread = threading.Thread(target=lambda: blocked_client.get(f"/v1/order-status/{order_id}"))
            thread.start()
            _push_requests(stack, MAX_REQUESTS + 5)  # one worker: these recycle it while the request waits
            wait_until(lambda: f"Worker {pid} shutdown 3/3" in _logs(stack), timeout=10, what="drain ended")
            # Drain over (3 s), the executor thread still waits for the lock (9 s); heartbeat timeout 4 s.
            wait_until(lambda: f"Worker exiting (pid: {pid})" in _logs(stack), timeout=20, what="worker exited")
            locker.rollback()
        thread.join(timeout=20)
    wait_until(lambda: len(_workers(stack) - {pid}) == 1, timeout=20, what="replacement")
    time.sleep(1)
    logs = _logs(stack)
    assert "WORKER TIMEOUT" not in logs and f"Worker (pid:{pid}) was sent" not in logs, logs[-3000:]
    assert "still not exited" not in logs
