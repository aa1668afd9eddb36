"""Helpers shared by the container session and the entrypoint integration test: fresh PostgreSQL databases,
free loopback ports, waiting for HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from devtools.pg import pg_available, temporary_database
from devtools.processes import free_port

__all__ = ["free_port", "fresh_database", "postgres_available", "query", "http_status", "wait_for_status"]

# One implementation of these for the whole project (tests, drill, load runner, container checks).
fresh_database = temporary_database
postgres_available = pg_available


def query(database_url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


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
