"""Metrics, access log and request ids on a real gunicorn (2 workers, loopback)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import GunicornServer, free_port, running_gunicorn, wait_until

pytestmark = pytest.mark.timeout(120)
ROUTE = "order-status"


def _metrics_env(**extra: str) -> dict[str, str]:
    return {"METRICS_PORT": str(free_port()), **extra}


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics listener as {(name, sorted labels): value}."""
    text = httpx.get(f"http://127.0.0.1:{server.env['METRICS_PORT']}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def _get_status(server, n: int) -> httpx.Response:
    # 30 s: while both workers recycle, a request waits in the backlog for a worker to boot (~1 s, longer on a
    # loaded machine).
    return httpx.get(
        server.url(f"/v1/order-status/{secrets.token_hex(6)}?secret=x"),
        headers={"X-Request-ID": f"rid-{n:04d}"},
        timeout=30,
    )


def _spread(server, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda n: _get_status(server, n), range(count)))


def _access_lines(server) -> list[str]:
    return [line for line in server.logs().splitlines() if " request_id=" in line and " client=" in line]


# With preload_app (issue 10 turns it on) the master imports the app and the metrics before fork: every value must
# still be per worker (prometheus_client re-creates values on a pid change).
@pytest.mark.parametrize("args", [(), ("--preload",)], ids=["fork-then-import", "preload"])
def test_requests_sum_exactly_over_workers_and_the_access_log_has_every_field(args):
    with running_gunicorn(workers=2, env=_metrics_env(), args=args) as server:
        responses = _spread(server, 200)
        assert {r.status_code for r in responses} == {404}
        pids = {r.headers["x-worker-pid"] for r in responses}
        assert len(pids) == 2, pids
        assert all(r.headers["x-request-id"] == f"rid-{n:04d}" for n, r in enumerate(responses))
        samples = scrape(server)
        assert value(samples, "coffee_http_requests_total", route=ROUTE, method="GET", status="404") == 200
        assert value(samples, "coffee_http_request_duration_seconds_count", route=ROUTE) == 200
        assert value(samples, "coffee_workers") == 2
        assert value(samples, "coffee_worker_boot_seconds_count") == 2
        assert {dict(ls)["pid"] for (n, ls) in samples if n == "coffee_worker_resident_memory_bytes"} == pids
        wait_until(lambda: len(_access_lines(server)) >= 200, timeout=10, what="200 access lines")
        lines = _access_lines(server)
        pattern = re.compile(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z GET /v1/order-status/[0-9a-f]{12} 404 \d+\.\dms \d+B "
            r"client=127\.0\.0\.1 request_id=(rid-\d{4}) pid=(\d+)$"
        )
        matched = [pattern.match(line) for line in lines]
        assert all(matched), [line for line, m in zip(lines, matched, strict=True) if not m][:3]
        assert sorted(m.group(1) for m in matched) == [f"rid-{n:04d}" for n in range(200)]
        assert {m.group(2) for m in matched} == pids
        assert "/health" not in "\n".join(lines)  # probes are not logged by default


def test_json_access_log_and_probes_logged_when_asked():
    env = _metrics_env(LOG_FORMAT="json", ACCESS_LOG_PROBES="1")
    with running_gunicorn(workers=2, env=env) as server:
        responses = _spread(server, 20)

        def records() -> list[dict]:
            lines = server.logs().splitlines()
            return [json.loads(line) for line in lines if line.startswith("{") and '"duration_ms"' in line]

        def status_records() -> list[dict]:
            return [r for r in records() if r["path"].startswith("/v1/order-status/")]

        # The line is written once the response is sent: the client may see the response first.
        statuses = wait_until(lambda: len(status_records()) >= 20 and status_records(), timeout=10, what="20 lines")
        assert len(statuses) == 20
        for record in statuses:
            assert {"time", "method", "path", "status", "duration_ms", "bytes", "client_ip", "request_id"} <= set(
                record
            )
            assert record["status"] == 404 and record["client_ip"] == "127.0.0.1" and "?" not in record["path"]
        assert {r["request_id"] for r in statuses} == {r.headers["x-request-id"] for r in responses}
        assert {str(r["worker_pid"]) for r in statuses} == {r.headers["x-worker-pid"] for r in responses}
        assert any(r["path"] == "/health" for r in records()), "probes logged with ACCESS_LOG_PROBES=1"


def test_sigkilled_worker_counts_as_crash_and_its_counts_stay():
    with running_gunicorn(workers=2, env=_metrics_env()) as server:
        responses = _spread(server, 60)
        victim = int(responses[0].headers["x-worker-pid"])
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: victim not in server.worker_pids() and len(server.serving_workers()) == 2,
            timeout=30,
            what="replacement worker",
        )
        samples = scrape(server)
        assert value(samples, "coffee_worker_restarts_total", reason="crash") == 1
        assert value(samples, "coffee_worker_restarts_total") == 1
        assert value(samples, "coffee_http_requests_total", route=ROUTE) == 60
        assert value(samples, "coffee_workers") == 2
        _spread(server, 10)
        assert value(scrape(server), "coffee_http_requests_total", route=ROUTE) == 70


@pytest.mark.timeout(240)  # six rounds of recycling, each worker boot ~1 s of CPU on a shared machine
def test_recycle_counts_as_recycle_and_the_directory_does_not_grow():
    env = _metrics_env(GUNICORN_MAX_REQUESTS="25", GUNICORN_MAX_REQUESTS_JITTER="10")
    with running_gunicorn(workers=2, env=env) as server:
        directory = Path(re.search(r"\(dir (\S+)\)", server.logs()).group(1))
        sent = 0
        sizes = []
        for _ in range(6):
            sent += len(_spread(server, 40))
            wait_until(lambda: len(server.serving_workers()) == 2, timeout=30, what="2 workers serving")
            sizes.append(len(list(directory.glob("*.db"))))
        # A worker that recycles right after the last round may have recorded its drain while its restart is not
        # counted yet: scrape again until they agree (a drain never counted as a restart still fails here).
        samples = wait_until(
            lambda: (
                (s := scrape(server))
                and value(s, "coffee_worker_drain_seconds_count")
                == value(s, "coffee_worker_restarts_total", reason="recycle")
                and s
            ),
            timeout=20,
            what="every drain counted as a recycle",
        )
        recycles = value(samples, "coffee_worker_restarts_total", reason="recycle")
        assert recycles >= 3, server.logs()[-2000:]
        assert value(samples, "coffee_worker_restarts_total") == recycles
        assert value(samples, "coffee_http_requests_total", route=ROUTE) == sent
        assert value(samples, "coffee_worker_drain_seconds_count") == recycles
        # Live workers (2) and the master write at most 4 files each; the dead are folded into 2 archives.
        assert max(sizes) <= 3 * 4 + 2, sizes


def test_workers_gauge_follows_ttin_and_ttou():
    with running_gunicorn(workers=2, env=_metrics_env()) as server:
        assert value(scrape(server), "coffee_workers") == 2
        server.send_signal(signal.SIGTTIN)
        wait_until(lambda: value(scrape(server), "coffee_workers") == 3, timeout=20, what="coffee_workers 3")
        wait_until(lambda: len(server.serving_workers()) == 3, timeout=30, what="3 workers serving")
        server.send_signal(signal.SIGTTOU)
        wait_until(lambda: value(scrape(server), "coffee_workers") == 2, timeout=20, what="coffee_workers 2")
        assert value(scrape(server), "coffee_worker_restarts_total") == 0  # scaling down is not a restart


def test_metrics_are_not_on_the_public_port_and_the_app_is_not_on_the_metrics_port():
    with running_gunicorn(workers=2, env=_metrics_env()) as server:
        public = httpx.get(server.url("/metrics"), timeout=5)
        assert public.status_code == 404 and "coffee_" not in public.text
        private = httpx.get(f"http://127.0.0.1:{server.env['METRICS_PORT']}/v1/order-status/x", timeout=5)
        assert "x-worker-pid" not in private.headers and "coffee_http_requests_total" in private.text
    with running_gunicorn(workers=2, env={"METRICS_PORT": "0"}) as server:
        assert "Metrics listener at" not in server.logs()
        assert httpx.get(server.url("/metrics"), timeout=5).status_code == 404
    port = free_port()
    server = GunicornServer(env={"METRICS_PORT": str(port), "GUNICORN_WORKERS": "2"}, port=port).start()
    try:
        server.wait_ready(workers=2)
        assert f"METRICS_PORT={port} is the public port; metrics listener off" in server.logs()
        assert "Metrics listener at" not in server.logs()
        assert httpx.get(server.url("/metrics"), timeout=5).status_code == 404
    finally:
        server.stop()


def test_hup_reload_counts_each_replaced_worker_as_reload():
    with running_gunicorn(workers=2, env=_metrics_env()) as server:
        _spread(server, 20)
        old = set(server.worker_pids())
        server.send_signal(signal.SIGHUP)
        wait_until(
            lambda: not old & set(server.worker_pids()) and len(server.serving_workers()) == 2,
            timeout=40,
            what="2 new workers after HUP",
        )
        samples = wait_until(
            lambda: (s := scrape(server)) and value(s, "coffee_worker_restarts_total", reason="reload") == 2 and s,
            timeout=10,
            what="2 reload restarts",
        )
        assert value(samples, "coffee_worker_restarts_total") == 2
        assert value(samples, "coffee_http_requests_total", route=ROUTE) == 20
        assert value(samples, "coffee_workers") == 2
