"""Stacks clone a migrated template instead of migrating (devtools/dbtemplate.py): on each backend the real
``migrate`` runs on an empty database here, and a clone has the same schema, and ``migrate --check`` finds nothing
left to apply on it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from devtools.dbtemplate import is_current, prepare_database
from devtools.pg import temporary_database
from devtools.stack import Stack, StackConfig, run_manage

pytestmark = pytest.mark.timeout(240)
PG_SCHEMA = """
    SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
    WHERE table_schema = 'public' ORDER BY table_name, column_name
"""
PG_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
# Rows post_migrate creates (content types, permissions): the same set in a clone, ids included.
ROWS = "SELECT app_label, model FROM django_content_type ORDER BY id"


def _env(var_dir: Path, database_url: str | None = None) -> dict[str, str]:
    return Stack(
        StackConfig(mode="dev", var_dir=var_dir, env={"DATABASE_URL": database_url} if database_url else {})
    ).env


def _sqlite(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def _pg(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as db:
        return db.execute(sql).fetchall()


def test_sqlite_real_migrate_and_a_clone_have_the_same_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("STACK_DB_TEMPLATE", "0")
    assert prepare_database(_env(tmp_path / "migrated")) == "migrated"  # the real migrate, on no database at all
    monkeypatch.delenv("STACK_DB_TEMPLATE")
    clone_env = _env(tmp_path / "cloned")
    assert prepare_database(clone_env) == "cloned"
    migrated, cloned = tmp_path / "migrated" / "coffee.sqlite3", tmp_path / "cloned" / "coffee.sqlite3"
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    assert _sqlite(cloned, schema) == _sqlite(migrated, schema)
    assert _sqlite(cloned, ROWS) == _sqlite(migrated, ROWS)
    assert _sqlite(cloned, "PRAGMA journal_mode") == [("wal",)]
    run_manage("migrate", "--check", env=clone_env)  # exits non-zero when a migration is unapplied
    assert prepare_database(clone_env) == "current"


@pytest.mark.postgres
def test_postgres_real_migrate_and_a_clone_have_the_same_schema(tmp_path, monkeypatch):
    with temporary_database("coffee_real") as real_url, temporary_database("coffee_clone", migrated=True) as clone_url:
        monkeypatch.setenv("STACK_DB_TEMPLATE", "0")
        assert prepare_database(_env(tmp_path, real_url)) == "migrated"  # the real migrate, on an empty database
        monkeypatch.delenv("STACK_DB_TEMPLATE")
        assert is_current("postgres", clone_url), "created from the migrated template"
        assert prepare_database(_env(tmp_path, clone_url)) == "current"
        for sql in (PG_SCHEMA, PG_INDEXES, ROWS):
            assert _pg(clone_url, sql) == _pg(real_url, sql)
        run_manage("migrate", "--check", env=_env(tmp_path, clone_url))
