"""Throw-away PostgreSQL databases on the local server (tests, drill, load runner)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from devtools.dbtemplate import create_pg_database

PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_available(admin_url: str = PG_ADMIN_URL) -> bool:
    """True when the PostgreSQL server answers on ``admin_url``."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def temporary_database(
    prefix: str = "coffee_tmp", admin_url: str = PG_ADMIN_URL, *, migrated: bool = False
) -> Iterator[str]:
    """Create a database, yield its URL, then drop it (terminating leftover connections). Empty, or with
    ``migrated`` a clone of the migrated template (``devtools.dbtemplate``; empty when that fails — a stack then
    migrates it)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if migrated:
            create_pg_database(conn, name, admin_url)
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
