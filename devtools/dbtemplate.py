"""Migrated-database templates for local stacks: migrate once, clone per stack.

Every stack (integration tests, drills, load runs) used to run ``manage.py migrate`` on a fresh database — 2–3 s of
a 4–5 s boot. Here the migrated schema is built once per :func:`migrations_fingerprint` into a template — a SQLite
file under ``var/db-templates/``, a PostgreSQL database ``coffee_tpl_<fingerprint>`` — and copied for each new
database: SQLite copies the file, PostgreSQL runs ``CREATE DATABASE … TEMPLATE`` (a template must have no other
connections while it is copied — https://www.postgresql.org/docs/current/manage-ag-templatedbs.html — so the
template is closed to connections once built and used for nothing else). A file lock keeps xdist workers and
side-by-side drills from building the same template at once.

Anything off about a template (the build fails, PostgreSQL refuses) is reported on stderr and the stack falls back
to a plain ``migrate``. ``STACK_DB_TEMPLATE=0`` turns the templates off (every stack migrates, as before).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import AbstractContextManager, closing
from pathlib import Path

import environ
import psycopg
from cryptography.fernet import Fernet

from coffee_payment.env import parse_bool, warn_stderr
from devtools.checkout_cache import checkout_digest, exclusive_lock

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "var" / "db-templates"
_FAILURES = (OSError, sqlite3.Error, psycopg.Error, subprocess.SubprocessError)


def templates_enabled() -> bool:
    """False when ``STACK_DB_TEMPLATE`` is off (a bad value warns and keeps them on)."""
    return parse_bool(os.environ, "STACK_DB_TEMPLATE", default=True)


def migrations_fingerprint() -> str:
    """What a migrated schema depends on: this interpreter's environment (``sys.prefix``: Django's and other
    packages' own migrations), uv.lock, settings.py (INSTALLED_APPS) and the content of every migration,
    ``models.py`` and ``fields.py`` of the project. A hex digest."""
    digest = checkout_digest()
    sources: list[str] = []
    for pattern in ("coffee_payment/**/migrations/*.py", "coffee_payment/**/models.py", "coffee_payment/**/fields.py"):
        sources += sorted(str(path.relative_to(ROOT)) for path in ROOT.glob(pattern))
    for name in sources:
        digest.update(f"{name}\0".encode())
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _locked() -> AbstractContextManager[None]:
    return exclusive_lock(TEMPLATE_DIR / ".lock")


def _migrate(env: dict[str, str]) -> None:
    from devtools.stack import run_manage  # devtools.stack imports this module

    run_manage("migrate", "--noinput", "-v", "0", env=env, timeout=300)


def _build_env(var_dir: str, database_url: str) -> dict[str, str]:
    """The environment a template is migrated with: nothing of the caller's server or database settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "DB_", "SQLITE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="coffee_payment.settings",
        DEBUG="1",
        VAR_DIR=var_dir,
        DATABASE_URL=database_url,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),  # an empty database has no rows to encrypt
    )
    return env


def _stamp() -> Path:
    return TEMPLATE_DIR / f"{migrations_fingerprint()[:16]}.migrations.json"


def _record(rows: list[tuple[str, str]]) -> None:
    """Keep the migrations a template was built with: a database holding exactly these is current."""
    _stamp().write_text(json.dumps(sorted(map(list, rows))))


def sqlite_template() -> Path:
    """The migrated SQLite template file for the current fingerprint, built (under the lock) if missing.
    Raises CalledProcessError (migrate failed), OSError, sqlite3.Error."""
    path = TEMPLATE_DIR / f"sqlite-{migrations_fingerprint()[:16]}.sqlite3"
    with _locked():
        if path.exists():
            return path
        with tempfile.TemporaryDirectory(dir=TEMPLATE_DIR) as tmp:
            building = Path(tmp) / "coffee.sqlite3"
            _migrate(_build_env(tmp, f"sqlite:///{building}"))
            # Closing the last connection checkpoints the WAL into the file (the journal mode stays WAL).
            with closing(sqlite3.connect(building)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                _record(db.execute("SELECT app, name FROM django_migrations").fetchall())
            os.replace(building, path)
        for old in TEMPLATE_DIR.glob("sqlite-*.sqlite3"):  # earlier fingerprints' (a copy in progress keeps its file)
            if old != path:
                old.unlink(missing_ok=True)
    return path


def pg_template(admin_url: str) -> str:
    """The name of the migrated PostgreSQL template database on ``admin_url``'s server, built (under the lock) if
    missing: migrated under a temporary name, renamed when complete, then closed to connections.
    Raises CalledProcessError (migrate failed), psycopg.Error."""
    name = f"coffee_tpl_{migrations_fingerprint()[:16]}"
    base = admin_url.rsplit("/", 1)[0]
    with _locked(), psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name
        building = f"coffee_tplbuild_{os.getpid()}"
        conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{building}"')
        try:
            with tempfile.TemporaryDirectory(dir=TEMPLATE_DIR) as tmp:
                _migrate(_build_env(tmp, f"{base}/{building}"))
            with psycopg.connect(f"{base}/{building}", connect_timeout=5) as db:
                _record(db.execute("SELECT app, name FROM django_migrations").fetchall())
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        except BaseException:
            conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            raise
    return name


def create_pg_database(conn: psycopg.Connection, name: str, admin_url: str) -> bool:
    """``CREATE DATABASE name`` on ``conn`` (autocommit, on ``admin_url``'s server), cloned from the migrated
    template when templates are on and it can be had; else empty (the stack then migrates it).
    Returns True when cloned."""
    if templates_enabled():
        try:
            template = pg_template(admin_url)
            with _locked():  # no clone while a build holds a connection to a template
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            if not _stamp().exists():  # the template outlived var/db-templates: its clone tells what it holds
                with psycopg.connect(f"{admin_url.rsplit('/', 1)[0]}/{name}", connect_timeout=5) as db:
                    _record(db.execute("SELECT app, name FROM django_migrations").fetchall())
            return True
        except _FAILURES as exc:
            warn_stderr(f"no migrated PostgreSQL template ({exc}); {name} is created empty and migrated")
    conn.execute(f'CREATE DATABASE "{name}"')
    return False


def database_of(env: dict[str, str]) -> tuple[str, str]:
    """Which database a stack with ``env`` uses: ("sqlite", file path), ("postgres", URL) or ("other", URL)."""
    url = env.get("DATABASE_URL")
    if not url:
        return "sqlite", str(Path(env.get("VAR_DIR") or ROOT / "var") / "coffee.sqlite3")
    try:
        config = environ.Env.db_url_config(url)
    except (KeyError, ValueError):
        return "other", url
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3") and config.get("NAME", ":memory:") not in ("", ":memory:"):
        return "sqlite", str(config["NAME"])
    if "postgresql" in engine:
        return "postgres", url
    return "other", url


def _applied(kind: str, where: str) -> list[list[str]] | None:
    """The (app, name) migrations recorded in the database, sorted; None when it has none or cannot be read."""
    try:
        if kind == "sqlite":
            if not Path(where).exists():
                return None
            with closing(sqlite3.connect(where, timeout=20)) as db:  # only reads; exists (a WAL file needs -shm)
                rows = db.execute("SELECT app, name FROM django_migrations").fetchall()
        else:
            with psycopg.connect(where, connect_timeout=5) as db:
                rows = db.execute("SELECT app, name FROM django_migrations").fetchall()
    except (sqlite3.Error, psycopg.Error):
        return None
    return sorted(map(list, rows))


def is_current(kind: str, where: str) -> bool:
    """True when the database holds exactly the migrations of the template built for the current fingerprint
    (so ``migrate`` would apply nothing)."""
    stamp = _stamp()
    if kind not in ("sqlite", "postgres") or not stamp.exists():
        return False
    return _applied(kind, where) == json.loads(stamp.read_text())


def prepare_database(env: dict[str, str]) -> str:
    """Make the stack's database migrated: a missing SQLite file is copied from the template; a database already
    at the template's migrations (a PostgreSQL clone from :func:`create_pg_database`) is left as is; anything
    else — or templates off, or a template failure (warned on stderr) — runs ``migrate``. Returns "cloned",
    "current" or "migrated". Raises CalledProcessError when ``migrate`` fails."""
    kind, where = database_of(env)
    if templates_enabled() and kind in ("sqlite", "postgres"):
        try:
            if kind == "sqlite" and not Path(where).exists():
                Path(where).parent.mkdir(parents=True, exist_ok=True)
                partial = Path(f"{where}.copying")
                shutil.copyfile(sqlite_template(), partial)
                os.replace(partial, where)
                return "cloned"
            if is_current(kind, where):
                return "current"
        except _FAILURES as exc:
            Path(f"{where}.copying").unlink(missing_ok=True)
            warn_stderr(f"no migrated database template ({exc}); migrating {where}")
    _migrate(env)
    return "migrated"
