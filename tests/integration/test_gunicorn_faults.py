"""Faults around the serving layer, each on a real gunicorn: signals to single workers, boot failures, a
worker whose event loop is blocked (timeout kill)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from devtools.processes import GunicornServer, requests_picked_up, wait_until

pytestmark = pytest.mark.serial
TIMEOUT = 10  # GUNICORN_TIMEOUT (= graceful timeout) for these servers, seconds


@contextmanager
def _server(app: str = "coffee_payment.asgi:application", **env: str) -> Iterator[GunicornServer]:
    server = GunicornServer(env={"GUNICORN_TIMEOUT": str(TIMEOUT), **env}, app=app).start()
    try:
        server.wait_ready(timeout=30, workers=int(env.get("GUNICORN_WORKERS", "1")))
        yield server
    finally:
        server.stop()


def _get_in_thread(url: str) -> tuple[list[object], threading.Thread]:
    results: list[object] = []

    def one() -> None:
        try:
            response = httpx.get(url, timeout=TIMEOUT + 10)
            results.append((response.status_code, response.headers.get("x-worker-pid")))
        except httpx.HTTPError as exc:
            results.append(exc)

    thread = threading.Thread(target=one)
    thread.start()
    return results, thread


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", ["SIGHUP", "SIGUSR2", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGWINCH"])
def test_a_master_only_signal_sent_to_a_worker_drops_nothing(sig: str):
    """``pkill -HUP -f gunicorn`` (or ``kill -USR2`` on the wrong pid) reaches the workers too (gunicorn PR 1868).
    A worker must not die by it: its in-flight request completes and the worker keeps serving."""
    with _server(GUNICORN_WORKERS="1") as server:
        (worker,) = server.worker_pids()
        results, thread = _get_in_thread(server.url("/_test/sleep?seconds=2"))
        time.sleep(0.1)
        wait_until(lambda: requests_picked_up(server.port, 1), timeout=10, what="request at the worker")
        os.kill(worker, getattr(signal, sig))
        thread.join(timeout=TIMEOUT + 15)
        logs = server.logs()
        assert results == [(200, str(worker))], (results, logs)
        assert server.worker_pids() == [worker], logs
        assert httpx.get(server.url("/health"), timeout=5).headers["x-worker-pid"] == str(worker)
        assert "was sent" not in logs, logs
        if sig != "SIGUSR1":  # USR1 reopens the log files (gunicorn's worker contract)
            assert f"Worker {worker} ignored {sig}: a signal for the gunicorn master" in logs, logs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("preload", ["1", "0"])
def test_an_app_that_fails_to_import_stops_the_master_with_the_reason(preload: str):
    server = GunicornServer(
        env={"GUNICORN_WORKERS": "2", "GUNICORN_PRELOAD": preload, "GUNICORN_TIMEOUT": str(TIMEOUT)},
        app="tests.integration.serving_raising_app:app",
    ).start()
    try:
        code = server.wait_exit(timeout=30)
        logs = server.logs()
        assert code not in (None, 0), logs
        assert "serving_raising_app: import failed on purpose" in logs, logs
        assert logs.count("Booting worker") <= 2, logs  # no respawn loop
    finally:
        server.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("preload", ["1", "0"])
def test_a_malformed_database_url_stops_the_master_with_the_reason(preload: str):
    server = GunicornServer(
        env={
            "GUNICORN_WORKERS": "2",
            "GUNICORN_PRELOAD": preload,
            "GUNICORN_TIMEOUT": str(TIMEOUT),
            "DATABASE_URL": "not-a-database-url",
        },
    ).start()
    try:
        code = server.wait_exit(timeout=30)
        logs = server.logs()
        assert code not in (None, 0), logs
        assert "DATABASE_URL" in logs, logs
        assert logs.count("Booting worker") <= 2, logs
    finally:
        server.stop()


@pytest.mark.timeout(90)
def test_a_worker_with_a_blocked_event_loop_is_killed_and_replaced_and_the_other_keeps_serving(tmp_path):
    timeout = 4
    marker = tmp_path / "blocked-pid"
    server = GunicornServer(
        env={"GUNICORN_WORKERS": "2", "GUNICORN_TIMEOUT": str(timeout), "BLOCK_MARKER": str(marker)},
        app="tests.integration.serving_fault_apps:app",
    ).start()
    try:
        server.wait_ready(timeout=30, workers=2)
        blocked, thread = _get_in_thread(server.url("/_test/block?seconds=60"))
        wait_until(lambda: marker.exists() and marker.read_text() != "", timeout=10, what="the blocked worker")
        victim = int(marker.read_text())
        started = time.monotonic()
        # Meanwhile the other worker serves (new connections go to whichever worker accepts).
        other = [httpx.get(server.url("/_test/sleep?seconds=0"), timeout=5) for _ in range(5)]
        assert all(r.status_code == 200 and r.headers["x-worker-pid"] != str(victim) for r in other)
        thread.join(timeout=timeout * 3 + 10)
        elapsed = time.monotonic() - started
        logs = server.logs()
        assert len(blocked) == 1 and isinstance(blocked[0], httpx.HTTPError), (blocked, logs)
        assert elapsed < timeout * 3, logs
        assert f"WORKER TIMEOUT (pid:{victim})" in logs, logs
        wait_until(lambda: len(p := server.worker_pids()) == 2 and victim not in p, timeout=20, what="replacement")
        assert httpx.get(server.url("/health"), timeout=5).status_code == 200
        assert server.running(), logs
    finally:
        server.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGQUIT"])
def test_a_stop_signal_to_one_worker_drains_or_drops_it_and_the_master_replaces_it(sig: str):
    with _server(GUNICORN_WORKERS="1") as server:
        (worker,) = server.worker_pids()
        results, thread = _get_in_thread(server.url("/_test/sleep?seconds=2"))
        time.sleep(0.1)
        wait_until(lambda: requests_picked_up(server.port, 1), timeout=10, what="request at the worker")
        os.kill(worker, getattr(signal, sig))
        thread.join(timeout=TIMEOUT + 15)
        logs = server.logs()
        if sig == "SIGQUIT":
            assert len(results) == 1 and isinstance(results[0], httpx.HTTPError), (results, logs)
        else:
            assert results == [(200, str(worker))], (results, logs)
        replacement = wait_until(
            lambda: (p := server.worker_pids()) and worker not in p and p, timeout=20, what="replacement"
        )
        wait_until(
            lambda: httpx.get(server.url("/health"), timeout=5).headers["x-worker-pid"] == str(replacement[0]),
            timeout=20,
        )
        assert "was sent" not in logs and "Traceback" not in logs, logs
