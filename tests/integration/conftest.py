"""Fixtures for integration tests: the real stack (sandbox + gunicorn with 2 Uvicorn workers) on SQLite and on
PostgreSQL, on free loopback ports, always stopped. Every app response, the server log and the database are
scanned for the demo provider secrets (tests/integration/secret_scan.py).

Tests that judge real timings (drills, signals, recycling, a make racing a slow Tmetr) are marked ``serial``: nox's
integration session runs the others with files side by side (pytest-xdist), then these one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.pg import temporary_database
from devtools.stack import ONE_CLIENT_ENV, Stack, StackConfig
from tests.integration.secret_scan import assert_no_secret, assert_no_secret_in_files
from tools.container.testsupport import query

# Short outbound budgets so timeout faults resolve quickly; the sandbox's "timeout" fault sleeps longer.
FAST_TIMEOUTS = {
    "PROVIDER_CONNECT_TIMEOUT_S": "2",
    "PROVIDER_READ_TIMEOUT_S": "2",
    "TMETR_CONNECT_TIMEOUT_S": "2",
    "TMETR_READ_TIMEOUT_S": "2",
    "GUNICORN_WORKERS": "2",
    "PAYMENT_REFRESH_INTERVAL_S": "1",
    "DISPENSE_SWEEP_GRACE_S": "1",
    **ONE_CLIENT_ENV,
}
SANDBOX_TIMEOUT_S = 4

# The parallel pass hands whole files to its workers (``--dist loadfile``) in collection order (the session passes
# ``--no-loadscope-reorder``; xdist would otherwise order them by their number of tests, so a file of a few long
# tests — test_entrypoint, test_admin_browser — started late and ran on while the other workers idled). Files are
# collected longest first: seconds per file (its tests' setup, call and teardown summed) measured in the parallel
# pass on the 2-core machine, 1 December 2026. A file not listed keeps its place after these.
FILE_SECONDS = {
    "test_dispense.py": 65,
    "test_flow.py": 62,
    "test_monitoring.py": 60,
    "upstream_uvicorn_worker/test_workers.py": 53,
    "test_customer_page.py": 50,
    "test_entrypoint.py": 41,
    "test_webhook_surface.py": 38,
    "test_gunicorn_config.py": 30,
    "test_reconcile.py": 23,
    "test_browser.py": 17,
    "test_locust_smoke.py": 12,
    "test_admin_browser.py": 11,
    "test_serve_task.py": 10,
    "test_db_template.py": 10,
    "test_k8s_probes.py": 10,
    "test_request_ids.py": 7,
    "test_forwarded_headers.py": 6,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the integration files longest first (see FILE_SECONDS); a stable sort, files kept whole."""
    here = Path(__file__).parent

    def seconds(item: pytest.Item) -> int:
        try:
            name = item.path.relative_to(here).as_posix()
        except ValueError:  # not an integration test
            return 0
        return FILE_SECONDS.get(name, 0)

    items.sort(key=lambda item: -seconds(item))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running stack per backend (module-scoped: tests use fresh QR uuids, so they don't interfere)."""
    var_dir: Path = tmp_path_factory.mktemp(f"var-{request.param}")
    env = dict(FAST_TIMEOUTS)
    if request.param == "postgres":
        with temporary_database("coffee_it", migrated=True) as url:
            env["DATABASE_URL"] = url
            with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")) as running:
                running.backend = request.param
                yield running
            rows = query(url, "SELECT * FROM devices_provideraccount")
            assert rows, "the demo merchant's provider accounts"
            assert_no_secret(repr(rows), "the devices_provideraccount table")
    else:
        with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")) as running:
            running.backend = request.param
            yield running
        assert_no_secret_in_files([var_dir / "coffee.sqlite3", var_dir / "coffee.sqlite3-wal"])
    assert_no_secret_in_files([var_dir / "logs" / "server.log"])


@pytest.fixture
def sandbox(stack: Stack) -> Iterator[httpx.Client]:
    """A client for the sandbox's control endpoints; faults and latency are reset after each test."""
    with httpx.Client(base_url=stack.sandbox_url, timeout=30) as client:
        client.post("/_sandbox/config", json={"timeout_seconds": SANDBOX_TIMEOUT_S}).raise_for_status()
        yield client
        client.post("/_sandbox/reset").raise_for_status()
        client.post("/_sandbox/config", json={"timeout_seconds": SANDBOX_TIMEOUT_S}).raise_for_status()


@pytest.fixture
def app(stack: Stack) -> Iterator[httpx.Client]:
    """A client for the app (redirects not followed, so tests see them)."""

    def scan(response: httpx.Response) -> None:
        response.read()
        assert_no_secret(response.content, f"the response to {response.request.method} {response.request.url}")

    with httpx.Client(base_url=stack.base_url, timeout=30, event_hooks={"response": [scan]}) as client:
        yield client
