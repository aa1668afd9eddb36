"""Helpers shared by the container session and the entrypoint integration test: fresh PostgreSQL databases,
free loopback ports, waiting for HTTP."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

PG_HOST = os.environ.get("COFFEE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("COFFEE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("COFFEE_TEST_PG_USER", "postgres")


def postgres_available(timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def fresh_database(prefix: str = "coffee_test") -> Iterator[str]:
    """Create an empty database (trust auth), yield its DATABASE_URL, drop it afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=5"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(database_url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def wait_for_status(url: str, timeout: float, alive=lambda: True, want: int = 200) -> float:
    """Poll ``url`` until it answers ``want``; return the seconds it took. ``alive()`` False aborts early."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if http_status(url) == want:
            return time.monotonic() - start
        if not alive():
            raise RuntimeError(f"the server died before {url} answered {want}")
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {want} within {timeout}s")
