"""Signals to the gunicorn master: TERM and INT graceful, QUIT / second INT quick, SIGKILLed worker replaced."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from devtools.processes import GunicornServer, connection_refused, requests_picked_up, running_gunicorn, wait_until
from loadtests.measure import cpu_seconds

pytestmark = pytest.mark.serial
TIMEOUT = 10  # GUNICORN_TIMEOUT (= graceful timeout) for these servers, seconds


def _in_flight(server: GunicornServer, count: int, seconds: float) -> tuple[list[object], Callable[[], None]]:
    """Start ``count`` /_test/sleep requests on separate connections; return (results, join)."""
    results: list[object] = []

    def one() -> None:
        try:
            response = httpx.get(server.url(f"/_test/sleep?seconds={seconds}"), timeout=TIMEOUT + 10)
            results.append(response.status_code)
        except httpx.HTTPError as exc:
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            thread.join(timeout=TIMEOUT + 15)

    return results, join


def _wait_in_flight(server: GunicornServer, count: int) -> None:
    """Block until the workers have accepted ``count`` connections and read their requests."""
    time.sleep(0.1)  # the client threads connect and send
    wait_until(lambda: requests_picked_up(server.port, count), timeout=10, what=f"{count} requests at the workers")
    assert server.running()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_graceful_signal_finishes_in_flight_refuses_new_and_exits_0(sig: int):
    with running_gunicorn(workers=2, env={"GUNICORN_TIMEOUT": str(TIMEOUT)}) as server:
        results, join = _in_flight(server, count=4, seconds=3)
        _wait_in_flight(server, 4)
        sent = time.monotonic()
        server.send_signal(sig)
        wait_until(lambda: connection_refused(server.port), timeout=2, what="listener closed")
        code = server.wait_exit(timeout=TIMEOUT + 2)
        elapsed = time.monotonic() - sent
        join()
        logs = server.logs()
        assert code == 0, logs
        assert elapsed < TIMEOUT, logs
        assert results == [200] * 4, (results, logs)
        assert "Master shutdown 1/2: closing listeners" in logs
        assert logs.count("shutdown 1/3: stop accepting new connections (cause: SIGTERM (graceful))") == 2, logs
        assert "shutdown 3/3: drained in" in logs
        assert "Master shutdown 2/2: all workers gone" in logs and "(0 killed at the deadline)" in logs
        assert "Perhaps out of memory" not in logs and "Traceback" not in logs


@pytest.mark.timeout(60)
def test_idle_keepalive_connection_is_served_during_drain_with_connection_close():
    with running_gunicorn(workers=1, env={"GUNICORN_TIMEOUT": str(TIMEOUT)}) as server:
        results, join = _in_flight(server, count=1, seconds=2)
        with httpx.Client(timeout=5) as client:
            assert client.get(server.url("/health")).status_code == 200  # connection now idle, kept alive
            _wait_in_flight(server, 2)  # the sleeping request's connection and our idle one
            server.send_signal(signal.SIGTERM)
            # Drain started: the listener is closed; our idle connection is within its grace window.
            wait_until(lambda: connection_refused(server.port), timeout=2, what="listener closed")
            response = client.get(server.url("/readyz"))
            assert response.status_code == 503 and response.json() == {"status": "draining"}
            assert response.headers["connection"] == "close"
        assert server.wait_exit(timeout=TIMEOUT) == 0
        join()
        assert results == [200]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["QUIT", "INT-INT"])
def test_quit_or_second_int_is_quick(how: str):
    with running_gunicorn(workers=2, env={"GUNICORN_TIMEOUT": str(TIMEOUT)}) as server:
        results, join = _in_flight(server, count=2, seconds=TIMEOUT)
        _wait_in_flight(server, 2)
        sent = time.monotonic()
        if how == "QUIT":
            server.send_signal(signal.SIGQUIT)
        else:
            server.send_signal(signal.SIGINT)
            time.sleep(0.5)
            server.send_signal(signal.SIGINT)
        code = server.wait_exit(timeout=TIMEOUT)
        elapsed = time.monotonic() - sent
        join()
        logs = server.logs()
        assert code == 0, logs
        assert elapsed < 4, logs  # quick: well before the in-flight requests (and the graceful timeout) end
        assert len(results) == 2 and all(isinstance(result, httpx.HTTPError) for result in results), results
        assert "quick exit" in logs and "Perhaps out of memory" not in logs


def _connections_per_worker(server: GunicornServer, per_worker: int) -> dict[int, list[httpx.Client]]:
    """Open keep-alive connections until each worker holds ``per_worker`` of them.

    The kernel (and asyncio's accept loop, which accepts a burst at once) may hand every new connection to
    one worker, so the test pins its requests instead of hoping: a ``/health`` on each fresh connection
    reads ``X-Worker-Pid``, and later requests on that connection reach the same worker.
    Returns ``{worker pid: [client, ...]}``; the caller closes the clients.
    """
    pools: dict[int, list[httpx.Client]] = {pid: [] for pid in server.worker_pids()}
    spare: list[httpx.Client] = []
    deadline = time.monotonic() + 20
    while any(len(clients) < per_worker for clients in pools.values()):
        assert time.monotonic() < deadline, f"could not reach every worker: {[len(c) for c in pools.values()]}"
        client = httpx.Client(timeout=TIMEOUT + 10, limits=httpx.Limits(max_connections=1))
        pid = int(client.get(server.url("/health")).headers["x-worker-pid"])
        if len(pools.get(pid, [None] * per_worker)) < per_worker:
            pools[pid].append(client)
        else:
            spare.append(client)  # kept open until the end so the next connect is a new one
    for client in spare:
        client.close()
    return pools


@pytest.mark.timeout(90)
def test_sigkilled_worker_is_replaced_and_only_its_requests_fail():
    with running_gunicorn(workers=2, env={"GUNICORN_TIMEOUT": str(TIMEOUT)}) as server:
        pools = _connections_per_worker(server, per_worker=3)
        victim, survivor = list(pools)
        results: dict[int, list[object]] = {victim: [], survivor: []}

        def one(pid: int, client: httpx.Client) -> None:
            try:
                results[pid].append(client.get(server.url("/_test/sleep?seconds=2")).status_code)
            except httpx.HTTPError as exc:
                results[pid].append(exc)

        threads = [
            threading.Thread(target=one, args=(pid, client)) for pid, clients in pools.items() for client in clients
        ]
        try:
            for thread in threads:
                thread.start()
            _wait_in_flight(server, len(threads))
            server_killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            for thread in threads:
                thread.join(timeout=TIMEOUT + 15)
        finally:
            for clients in pools.values():
                for client in clients:
                    client.close()
        pids = wait_until(
            lambda: (p := server.worker_pids()) and len(p) == 2 and victim not in p and p,
            timeout=20,
            what="replacement worker",
        )
        assert survivor in pids
        wait_until(lambda: httpx.get(server.url("/health")).status_code == 200, timeout=10)
        assert results[survivor] == [200, 200, 200], "requests on the surviving worker completed"
        assert len(results[victim]) == 3
        assert all(isinstance(r, httpx.HTTPError) for r in results[victim]), results
        assert time.monotonic() - server_killed_at < 25


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stop_during_worker_boot_exits_0_with_a_log_line(sig: int):
    server = GunicornServer(
        # Without preload: the workers import the app themselves, which is the boot window under test.
        env={"GUNICORN_WORKERS": "2", "GUNICORN_PRELOAD": "0", "SLOW_BOOT_SECONDS": "20"},
        app="tests.integration.slow_boot_app:app",
    )
    server.start()
    try:
        workers = wait_until(lambda: len(p := server.worker_pids()) == 2 and p, timeout=10, what="2 workers forked")
        # Past init_signals and deep in the app import: each worker has burnt some CPU compiling. (A TERM sent
        # to a worker in its first milliseconds hits the master's inherited handler — gunicorn's own gap.)
        wait_until(lambda: all(cpu_seconds(pid) > 0.3 for pid in workers), timeout=10, what="workers importing")
        sent = time.monotonic()
        server.send_signal(sig)
        code = server.wait_exit(timeout=TIMEOUT)
        logs = server.logs()
        assert code == 0, logs
        assert time.monotonic() - sent < 5, logs  # not the graceful deadline: the workers left at once
        assert "Started server process" not in logs, logs
        assert (
            logs.count("shutdown during boot (cause: SIGTERM): this worker accepted no connection, exiting 0") == 2
        ), logs
        assert "was sent SIGTERM" not in logs and "Traceback" not in logs, logs
    finally:
        server.stop()


def _slow_fork_config(tmp_path, trigger, marker):
    """A gunicorn config: the project's gunicorn.conf.py, plus a post_fork that, once ``trigger`` exists, records
    the new worker's pid in ``marker`` and sleeps 3 s — a wide, deterministic fork-to-``init_signals`` window."""
    from devtools.processes import PROJECT_ROOT

    conf = tmp_path / "slow_fork.conf.py"
    conf.write_text(
        "import os, time\n"
        f"_path = {str(PROJECT_ROOT / 'gunicorn.conf.py')!r}\n"
        "exec(compile(open(_path).read(), _path, 'exec'))\n"
        "_project_post_fork = post_fork\n"
        "def post_fork(server, worker):\n"
        "    _project_post_fork(server, worker)\n"
        f"    if os.path.exists({str(trigger)!r}):\n"
        f"        with open({str(marker)!r}, 'a') as f:\n"
        "            f.write(f'{os.getpid()}\\n')\n"
        "        time.sleep(3)\n"
    )
    return conf


@pytest.mark.timeout(60)
def test_term_reaching_a_worker_between_fork_and_its_handlers_stops_it_at_once(tmp_path):
    """The master's TERM lands in a just-forked worker still running the arbiter's inherited handler: the worker
    must still stop (it found the signal in its copy of the arbiter's queue), not serve until the SIGKILL at the
    graceful deadline (seen in CI: 30 s)."""
    trigger, marker = tmp_path / "trigger", tmp_path / "forked"
    conf = _slow_fork_config(tmp_path, trigger, marker)
    graceful = 20
    with running_gunicorn(workers=1, env={"GUNICORN_TIMEOUT": str(graceful)}, args=("-c", str(conf))) as server:
        (first,) = server.worker_pids()
        trigger.touch()
        os.kill(first, signal.SIGKILL)  # the master forks a replacement, which sleeps in post_fork
        wait_until(lambda: marker.exists() and marker.read_text().strip() != "", timeout=15, what="replacement forked")
        forked = int(marker.read_text().split()[0])
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait_exit(timeout=graceful + 10)
        elapsed = time.monotonic() - sent
        logs = server.logs()
        assert code == 0, logs
        assert elapsed < graceful / 2, f"TERM took {elapsed:.1f}s\n{logs}"
        assert f"Worker {forked} shutdown during boot (cause: SIGTERM)" in logs, logs
        assert "still running at the deadline" not in logs, logs
