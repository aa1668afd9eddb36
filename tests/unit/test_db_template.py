"""devtools.dbtemplate: the migrated SQLite template is built once per fingerprint (under a lock), copied for each
new database, and a plain migrate is the fallback whenever the template is off or fails. ``migrate`` is faked here
(it writes a ``django_migrations`` table); tests/integration/test_db_template.py runs the real one."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from devtools import dbtemplate

pytestmark = pytest.mark.timeout(30)
MIGRATIONS = [("devices", "0001_initial"), ("orders", "0001_initial")]


class FakeMigrate:
    """Stands in for ``manage.py migrate``: records each call, writes the migrations table into the env's database."""

    def __init__(self, *, fail_builds: bool = False, delay: float = 0.0) -> None:
        self.calls: list[dict[str, str]] = []
        self.fail_builds = fail_builds
        self.delay = delay

    def __call__(self, env: dict[str, str]) -> None:
        self.calls.append(env)
        time.sleep(self.delay)
        if self.fail_builds and Path(dbtemplate.database_of(env)[1]).parent.parent == dbtemplate.TEMPLATE_DIR:
            raise subprocess.CalledProcessError(1, ["manage.py", "migrate"], "", "boom")
        path = Path(dbtemplate.database_of(env)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS django_migrations (app TEXT, name TEXT)")
            db.executemany("INSERT INTO django_migrations VALUES (?, ?)", MIGRATIONS)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeMigrate:
    monkeypatch.setattr(dbtemplate, "TEMPLATE_DIR", tmp_path / "templates")
    monkeypatch.delenv("STACK_DB_TEMPLATE", raising=False)
    migrate = FakeMigrate()
    monkeypatch.setattr(dbtemplate, "_migrate", migrate)
    return migrate


def _env(var_dir: Path) -> dict[str, str]:
    return {"VAR_DIR": str(var_dir)}


def test_a_missing_sqlite_database_is_copied_from_one_template_build(fake, tmp_path):
    assert dbtemplate.prepare_database(_env(tmp_path / "a")) == "cloned"
    assert dbtemplate.prepare_database(_env(tmp_path / "b")) == "cloned"
    assert len(fake.calls) == 1, "one template build, no migrate per stack"
    assert fake.calls[0]["DATABASE_URL"].startswith(f"sqlite:///{dbtemplate.TEMPLATE_DIR}")
    with closing(sqlite3.connect(tmp_path / "b" / "coffee.sqlite3")) as db:
        assert sorted(db.execute("SELECT app, name FROM django_migrations")) == MIGRATIONS


def test_a_database_at_the_templates_migrations_is_not_migrated_again(fake, tmp_path):
    dbtemplate.prepare_database(_env(tmp_path / "a"))
    assert dbtemplate.prepare_database(_env(tmp_path / "a")) == "current"
    assert len(fake.calls) == 1


def test_an_existing_database_that_is_behind_is_migrated(fake, tmp_path):
    dbtemplate.prepare_database(_env(tmp_path / "a"))
    (tmp_path / "old").mkdir()
    sqlite3.connect(tmp_path / "old" / "coffee.sqlite3").close()  # exists, no migrations table
    assert dbtemplate.prepare_database(_env(tmp_path / "old")) == "migrated"
    assert fake.calls[-1] == _env(tmp_path / "old")


def test_templates_off_migrates_every_database(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("STACK_DB_TEMPLATE", "0")
    assert dbtemplate.prepare_database(_env(tmp_path / "a")) == "migrated"
    assert fake.calls == [_env(tmp_path / "a")]
    assert not (dbtemplate.TEMPLATE_DIR).exists()


def test_a_failed_template_build_warns_and_migrates(fake, tmp_path, capsys):
    fake.fail_builds = True
    assert dbtemplate.prepare_database(_env(tmp_path / "a")) == "migrated"
    assert "no migrated database template" in capsys.readouterr().err
    assert fake.calls[-1] == _env(tmp_path / "a")
    assert not list(dbtemplate.TEMPLATE_DIR.glob("*.sqlite3")), "no half-built template is kept"
    assert not (tmp_path / "a" / "coffee.sqlite3.copying").exists()


def test_concurrent_stacks_build_the_template_once(fake, tmp_path):
    fake.delay = 0.3
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(dbtemplate.prepare_database(_env(tmp_path / f"s{n}"))))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == ["cloned"] * 4
    assert len(fake.calls) == 1


def test_the_fingerprint_follows_migrations_and_ignores_other_code(monkeypatch, tmp_path):
    (tmp_path / "coffee_payment" / "orders" / "migrations").mkdir(parents=True)
    (tmp_path / "uv.lock").write_text("lock")
    (tmp_path / "coffee_payment" / "settings.py").write_text("INSTALLED_APPS = []")
    migration = tmp_path / "coffee_payment" / "orders" / "migrations" / "0001_initial.py"
    migration.write_text("operations = []")
    monkeypatch.setattr(dbtemplate, "ROOT", tmp_path)
    first = dbtemplate.migrations_fingerprint()
    (tmp_path / "coffee_payment" / "orders" / "views.py").write_text("def view(): ...")
    assert dbtemplate.migrations_fingerprint() == first
    migration.write_text("operations = [1]")
    assert dbtemplate.migrations_fingerprint() != first


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, ("sqlite", "/v/coffee.sqlite3")),
        ("sqlite:////data/x.sqlite3", ("sqlite", "/data/x.sqlite3")),
        ("postgres://u@127.0.0.1:5432/db", ("postgres", "postgres://u@127.0.0.1:5432/db")),
        ("mysql://u@h/db", ("other", "mysql://u@h/db")),
    ],
)
def test_database_of(url, expected):
    env = {"VAR_DIR": "/v"} | ({"DATABASE_URL": url} if url else {})
    assert dbtemplate.database_of(env) == expected


def test_a_new_fingerprint_replaces_the_old_sqlite_template(fake, tmp_path, monkeypatch):
    dbtemplate.prepare_database(_env(tmp_path / "a"))
    (old,) = dbtemplate.TEMPLATE_DIR.glob("sqlite-*.sqlite3")
    monkeypatch.setattr(dbtemplate, "migrations_fingerprint", lambda: "f" * 64)
    assert dbtemplate.prepare_database(_env(tmp_path / "b")) == "cloned"
    assert [path.name for path in dbtemplate.TEMPLATE_DIR.glob("sqlite-*.sqlite3")] == [f"sqlite-{'f' * 16}.sqlite3"]
    assert not old.exists() and len(fake.calls) == 2
