"""Faults around the serving layer, each on a real gunicorn: signals to single workers, boot failures, a
worker whose event loop is blocked (timeout kill)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def _block_a_worker(server, marker):
    """``GET /_test/block`` in a thread; once the worker that took it has written its pid to ``marker``:
    (that pid, results, thread)."""
    blocked, thread = _get_in_thread(server.url("/_test/block?seconds=60"))
    wait_until(lambda: marker.exists() and marker.read_text() != "", timeout=10, what="the blocked worker")
    return int(marker.read_text()), blocked, thread


def _signal_the_worker_mid_request(server, sig: str):
    """With one worker: send it ``sig`` while a 2 s request is in flight, wait for that request's end;
    (the worker's pid, the request's results, the server log)."""
    (worker,) = server.worker_pids()
    results, thread = _slow_request_in_flight(server, 2)
    os.kill(worker, getattr(signal, sig))
    thread.join(timeout=TIMEOUT + 15)
    return worker, results, server.logs()


def _slow_request_in_flight(server, seconds: float, *, at: str = "request at the worker"):
    """Start ``GET /_test/sleep?seconds=…`` in a thread and wait until a worker has picked it up; (results, thread)."""
    results, thread = _get_in_thread(server.url(f"/_test/sleep?seconds={seconds:g}"))
    time.sleep(0.1)
    wait_until(lambda: requests_picked_up(server.port, 1), timeout=10, what=at)
    return results, thread


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", ["SIGHUP", "SIGUSR2", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGWINCH"])
def test_a_master_only_signal_sent_to_a_worker_drops_nothing(sig: str):
    """``pkill -HUP -f gunicorn`` (or ``kill -USR2`` on the wrong pid) reaches the workers too (gunicorn PR 1868).
    A worker must not die by it: its in-flight request completes and the worker keeps serving."""
    with _server(GUNICORN_WORKERS="1") as server:
        worker, results, logs = _signal_the_worker_mid_request(server, sig)
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
        victim, blocked, thread = _block_a_worker(server, marker)
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
        worker, results, logs = _signal_the_worker_mid_request(server, sig)
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


@pytest.mark.timeout(90)
def test_usr2_upgrade_then_term_to_the_old_master_keeps_serving_and_metrics():
    """The binary upgrade dance (gunicorn docs, "Upgrading to a new binary on the fly"): USR2 to the master starts
    a new master with its own workers on the same sockets; TERM to the old one leaves the new one serving — with
    its metrics listener, which the old master held on METRICS_PORT until it exited."""
    from devtools.launch import free_port
    from devtools.processes import child_pids

    metrics_port = free_port()
    # The console script, as entrypoint.sh runs it: gunicorn re-execs its own argv, and ``python -m gunicorn``
    # becomes ``python .../gunicorn/__main__.py``, whose directory then shadows the standard library's ``http``.
    server = _ScriptGunicorn(
        env={"GUNICORN_WORKERS": "1", "GUNICORN_TIMEOUT": str(TIMEOUT), "METRICS_PORT": str(metrics_port)}
    )
    with contextlib.closing(server.start()) as server:
        server.wait_ready(timeout=30, workers=1)
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200
        (old_worker,) = server.worker_pids()
        server.send_signal(signal.SIGUSR2)
        new_master = wait_until(
            lambda: next((pid for pid in child_pids(server.pid) if child_pids(pid)), None),
            timeout=30,
            what="the new master and its worker",
        )
        wait_until(
            lambda: f"Worker {child_pids(new_master)[0]} accepting" in server.logs(), timeout=30, what="new worker"
        )
        server.send_signal(signal.SIGTERM)
        assert server.wait_exit(timeout=TIMEOUT + 5) == 0, server.logs()
        pids = {httpx.get(server.url("/health"), timeout=5).headers["x-worker-pid"] for _ in range(5)}
        assert str(old_worker) not in pids and pids <= {str(p) for p in child_pids(new_master)}, server.logs()
        wait_until(
            lambda: _metrics_ok(metrics_port), timeout=10, what=f"metrics on :{metrics_port} from the new master"
        )
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: _gone(new_master), timeout=TIMEOUT + 5, what="new master gone")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # an orphan nobody reaped yet
    except OSError:
        return True


def _metrics_ok(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _ScriptGunicorn(GunicornServer):
    """Started with the ``gunicorn`` console script (``entrypoint.sh``), not ``python -m gunicorn``."""

    def start(self) -> _ScriptGunicorn:
        from devtools.launch import start_process
        from devtools.processes import PROJECT_ROOT

        command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", self.app]
        with self.log_path.open("ab") as log:
            self.process = start_process(command, env=self.env, output=log, cwd=PROJECT_ROOT)
        return self

    def close(self) -> None:
        self.stop()


@pytest.mark.timeout(60)
def test_graceful_timeout_below_timeout_bounds_the_stop_and_the_slow_request_fails_cleanly():
    """GUNICORN_GRACEFUL_TIMEOUT shorter than a request in flight: the stop ends within graceful_timeout (the
    worker's drain deadline is below it: no SIGKILL), and the slow request is answered, not left hanging."""
    graceful = 4
    with _server(GUNICORN_WORKERS="1", GUNICORN_GRACEFUL_TIMEOUT=str(graceful)) as server:
        results, thread = _slow_request_in_flight(server, 8)
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait_exit(timeout=graceful + 5)
        elapsed = time.monotonic() - sent
        thread.join(timeout=5)
        logs = server.logs()
        assert code == 0 and elapsed < graceful, (elapsed, logs)
        assert len(results) == 1, logs
        assert isinstance(results[0], httpx.HTTPError) or results[0][0] >= 500, (results, logs)
        assert "drain deadline" in logs and "still running at the deadline" not in logs, logs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTTOU", "SIGTTIN", "SIGUSR1"])
def test_a_master_signal_with_requests_in_flight_loses_none(sig: str):
    """HUP (new workers, old ones drained), TTOU (one worker drained), TTIN, USR1 (logs reopened) to the master
    while slow requests are in flight on both workers: every request completes, the master keeps serving."""
    with _server(GUNICORN_WORKERS="2") as server:
        before = set(server.worker_pids())
        threads = [_get_in_thread(server.url("/_test/sleep?seconds=2")) for _ in range(4)]
        time.sleep(0.1)
        wait_until(lambda: requests_picked_up(server.port, 4), timeout=10, what="requests at the workers")
        server.send_signal(getattr(signal, sig))
        for _results, thread in threads:
            thread.join(timeout=TIMEOUT + 15)
        logs = server.logs()
        assert [r[0] for r, _t in threads] == [(200, r[0][1]) for r, _t in threads], logs
        expected = {"SIGHUP": 2, "SIGTTOU": 1, "SIGTTIN": 3, "SIGUSR1": 2}[sig]
        after = wait_until(
            lambda: len(p := server.worker_pids()) == expected and p, timeout=20, what=f"{expected} workers"
        )
        if sig == "SIGHUP":
            assert not before & set(after), logs
        for _ in range(4):
            assert httpx.get(server.url("/health"), timeout=5).status_code == 200
        assert server.running() and "was sent" not in logs and "Traceback" not in logs, logs


@pytest.mark.timeout(120)
def test_recycling_behind_a_keepalive_proxy_gives_no_502_on_posts(tmp_path):
    """ingress-nginx in front (upstream keep-alive, no retry of a POST that reached the server): workers recycling
    under POST load (max_requests + jitter) must not close a pooled connection under a request (gunicorn 2567,
    3038: 502 at the proxy)."""
    from devtools.ingress import Ingress, IngressSettings

    env = {"GUNICORN_WORKERS": "2", "GUNICORN_MAX_REQUESTS": "60", "GUNICORN_MAX_REQUESTS_JITTER": "20"}
    with _server(**env) as server:
        ingress = Ingress(IngressSettings(), tmp_path).start([server.port])
        try:
            statuses: list[object] = []
            lock = threading.Lock()
            stop_at = time.monotonic() + 8

            def client() -> None:
                with httpx.Client(base_url=ingress.url, timeout=10) as session:
                    while time.monotonic() < stop_at:
                        try:
                            status = session.post("/_test/sleep?seconds=0.01", content=b"x").status_code
                        except httpx.HTTPError as exc:
                            status = repr(exc)
                        with lock:
                            statuses.append(status)

            threads = [threading.Thread(target=client) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            logs = server.logs()
            recycles = logs.count("reached, recycling")
            bad = [s for s in statuses if s != 200]
            assert recycles >= 2, logs
            assert not bad, (len(statuses), bad[:10], ingress.errors())
        finally:
            ingress.stop()


@pytest.mark.timeout(60)
def test_term_while_a_worker_loop_is_blocked_ends_at_the_graceful_deadline_with_a_truthful_log(tmp_path):
    marker = tmp_path / "blocked-pid"
    graceful = 5
    server = GunicornServer(
        env={
            "GUNICORN_WORKERS": "2",
            "GUNICORN_TIMEOUT": "30",
            "GUNICORN_GRACEFUL_TIMEOUT": str(graceful),
            "BLOCK_MARKER": str(marker),
        },
        app="tests.integration.serving_fault_apps:app",
    ).start()
    try:
        server.wait_ready(timeout=30, workers=2)
        victim, blocked, thread = _block_a_worker(server, marker)
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait_exit(timeout=graceful + 5)
        elapsed = time.monotonic() - sent
        thread.join(timeout=10)
        logs = server.logs()
        assert code == 0 and elapsed < graceful + 2, (elapsed, logs)
        assert len(blocked) == 1 and isinstance(blocked[0], httpx.HTTPError), (blocked, logs)
        assert f"Worker {victim} still running at the deadline: SIGKILL" in logs, logs
        assert "Perhaps out of memory" not in logs, logs
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_workers_of_a_killed_master_stop_instead_of_serving_as_orphans():
    """The master dies without stopping its workers (SIGKILL, OOM killer): gunicorn's own workers notice the new
    parent and exit ("Parent changed, shutting down"); an orphan would keep the port and serve on unsupervised."""
    with _server(GUNICORN_WORKERS="2") as server:
        workers = server.worker_pids()
        results, thread = _slow_request_in_flight(server, 2, at="request at a worker")
        os.kill(server.pid, signal.SIGKILL)
        thread.join(timeout=TIMEOUT + 5)
        try:
            wait_until(lambda: all(_gone(pid) for pid in workers), timeout=TIMEOUT, what="orphaned workers gone")
        finally:
            for pid in workers:  # ours: started by this test's server
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        assert results and results[0] != [] and not isinstance(results[0], Exception), (results, server.logs())
        logs = server.logs()
        assert all(f"Worker {pid}: parent changed (master {server.pid} gone)" in logs for pid in workers), logs
        assert logs.count("shutdown 3/3: drained in") == 2, logs
