"""Database bounds: the connection options, the E010 check, and the 503 a request gets when it hits a bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from django.db import OperationalError

from coffee_payment import dbtimeouts
from coffee_payment.checks import check_database_bounds
from coffee_payment.serving.lean import LeanASGIHandler

pytestmark = [
    pytest.mark.timeout(30),
    # The check reads settings.DATABASES; no test here opens a connection with the overridden value.
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


class PoolTimeout(Exception):
    """Stands in for psycopg_pool.PoolTimeout (matched by name)."""


def _wrapped(cause: Exception, message: str = "boom") -> OperationalError:
    try:
        raise OperationalError(message) from cause
    except OperationalError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_wrapped(_PgError("57014")), "statement_timeout"),
        (_wrapped(_PgError("55P03")), "lock_timeout"),
        (_wrapped(PoolTimeout("couldn't get a connection after 10.00 sec")), "pool_timeout"),
        (OperationalError("database is locked"), "sqlite_busy"),
        (_wrapped(_PgError("08006")), None),  # connection failure: an outage, stays a 500
        (OperationalError("no such table: orders_order"), None),  # a bug, stays a 500
        (ValueError("database is locked"), None),
    ],
)
def test_timeout_reason(exc: BaseException, reason: str | None) -> None:
    assert dbtimeouts.timeout_reason(exc) == reason


def _database_settings(**env: str) -> dict:
    """DATABASES["default"] as coffee_payment.settings builds it from ``env`` (a fresh interpreter)."""
    code = "import json; from django.conf import settings as s; print(json.dumps(s.DATABASES['default']['OPTIONS']))"
    run_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "coffee_payment.settings", "SECRET_KEY": "x", **env}
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=25,
        check=True,
    )
    return {"options": json.loads(done.stdout), "stderr": done.stderr}


def test_postgres_connection_options_carry_both_timeouts() -> None:
    found = _database_settings(
        DATABASE_URL="postgres://u@127.0.0.1:5432/db", DB_STATEMENT_TIMEOUT_S="7.5", DB_LOCK_TIMEOUT_S="2"
    )
    assert found["options"]["options"] == "-c statement_timeout=7500 -c lock_timeout=2000"


def test_bad_timeout_falls_back_with_a_warning_naming_the_variable() -> None:
    found = _database_settings(DATABASE_URL="postgres://u@127.0.0.1:5432/db", DB_LOCK_TIMEOUT_S="soon")
    assert found["options"]["options"] == "-c statement_timeout=15000 -c lock_timeout=5000"
    assert "DB_LOCK_TIMEOUT_S='soon'" in found["stderr"]


def test_sqlite_keeps_its_busy_timeout() -> None:
    found = _database_settings(DATABASE_URL="sqlite:////tmp/coffee-test-bounds.sqlite3")
    assert found["options"]["timeout"] == 20.0 and "options" not in found["options"]


def _postgres(settings, *, statement: float, lock: float, pool: float) -> None:
    settings.DATABASES = {
        "default": {"ENGINE": "django.db.backends.postgresql", "OPTIONS": {"pool": {"timeout": pool}}}
    }
    settings.DB_STATEMENT_TIMEOUT_S, settings.DB_LOCK_TIMEOUT_S = statement, lock


def test_check_bounds_below_the_drain_pass(settings, monkeypatch) -> None:
    monkeypatch.setenv("GUNICORN_TIMEOUT", "30")  # drain budget 27 s
    _postgres(settings, statement=15, lock=5, pool=10)
    assert check_database_bounds() == []


def test_check_flags_each_bound_at_or_above_the_drain(settings, monkeypatch) -> None:
    monkeypatch.setenv("GUNICORN_TIMEOUT", "60")
    monkeypatch.setenv("GUNICORN_GRACEFUL_TIMEOUT", "20")  # drain budget 18 s
    _postgres(settings, statement=18, lock=5, pool=30)
    problems = check_database_bounds()
    assert [p.id for p in problems] == ["coffee_payment.E010", "coffee_payment.E010"]
    assert "DB_STATEMENT_TIMEOUT_S=18" in problems[0].msg and "DB_POOL_TIMEOUT_S=30" in problems[1].msg


def test_check_sqlite_busy_timeout(settings, monkeypatch) -> None:
    monkeypatch.setenv("GUNICORN_TIMEOUT", "10")  # drain budget 9 s
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "OPTIONS": {"timeout": 20}}}
    assert "SQLITE_BUSY_TIMEOUT_S=20" in check_database_bounds()[0].msg


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("accept", "content_type"), [("application/json", "application/json"), ("text/html", "text/plain")]
)
async def test_status_json_blocked_on_a_lock_answers_503_with_the_reason(monkeypatch, accept, content_type) -> None:
    def locked(order_id: str) -> dict:
        raise _wrapped(_PgError("55P03"), "canceling statement due to lock timeout")

    monkeypatch.setattr("coffee_payment.orders.views.status_row", locked)
    transport = httpx.ASGITransport(app=LeanASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/v1/order-status/some-order", headers={"Accept": accept})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["retry-after"] == "1"
    if content_type == "application/json":
        assert response.json() == {"error": dbtimeouts.MESSAGE, "reason": "database lock_timeout"}


@pytest.mark.anyio
async def test_other_database_errors_stay_500(monkeypatch) -> None:
    def broken(order_id: str) -> dict:
        raise OperationalError("no such table: orders_order")

    monkeypatch.setattr("coffee_payment.orders.views.status_row", broken)
    transport = httpx.ASGITransport(app=LeanASGIHandler(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/v1/order-status/some-order")
    assert response.status_code == 500
