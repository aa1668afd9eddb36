"""nox sessions: lint, unit, integration, container (image built and run for real), load, rollout.

Every session installs the project from ``uv.lock`` into its own virtualenv (``uv sync --frozen``), so a
session runs the exact versions the Docker image ships.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nox

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devtools.debian import ensure_packages  # noqa: E402

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "unit", "integration", "container"]

PYTHON = "3.11"


def install_locked(session: nox.Session) -> None:
    """Install the locked runtime + dev dependencies into the session's virtualenv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--group",
        "dev",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def ensure_postgres(session: nox.Session) -> None:
    """Start the machine's PostgreSQL cluster if it is down (the integration tests use 127.0.0.1:5432)."""
    if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False).returncode == 0:
        return
    clusters = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    if not clusters:
        session.error("PostgreSQL is not running on 127.0.0.1:5432 and no local cluster was found")
    session.run("pg_ctlcluster", "--skip-systemctl-redirect", clusters[0], "main", "start", external=True)


def ensure_debian_packages(session: nox.Session, packages: dict[str, str]) -> None:
    """Install Debian packages whose binary is missing (``{binary: package}``); needs root, as on CI."""
    try:
        ensure_packages(packages)
    except (PermissionError, subprocess.CalledProcessError) as exc:
        session.error(str(exc))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) over the code; hadolint over the Dockerfile."""
    install_locked(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("hadolint", "Dockerfile")
    # The committed Russian catalog must compile with GNU gettext (format strings checked); the .mo beside it is
    # compared with the .po by tests/unit/test_translations.py.
    ensure_debian_packages(session, {"msgfmt": "gettext"})
    session.run("msgfmt", "--check", "-o", os.devnull, "locale/ru/LC_MESSAGES/django.po", external=True)


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tests: pure logic and in-process Django (no servers); promtool (Debian's prometheus) for the alert rules."""
    install_locked(session)
    ensure_debian_packages(session, {"promtool": "prometheus"})
    session.run("pytest", *(session.posargs or ["tests/unit"]))


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Integration tests: real gunicorn/runserver/sandbox processes over loopback HTTP, SQLite and PostgreSQL,
    headless Chromium (Debian's, installed if missing)."""
    install_locked(session)
    ensure_postgres(session)
    ensure_debian_packages(session, {"chromium": "chromium", "nginx": "nginx"})
    session.run("pytest", *(session.posargs or ["tests/integration"]))


@nox.session(python=PYTHON)
def container(session: nox.Session) -> None:
    """The image built and run for real: a private dockerd (root; Debian's docker.io, installed if missing), a
    local stand-in python:3.11-slim (debootstrap, cached in /var/cache/coffee-container), the Dockerfile built
    unchanged with the legacy builder and run in both RUN_MODEs; hadolint, lock sync. Cleans up after itself."""
    install_locked(session)
    ensure_postgres(session)  # the containers (--network host) use 127.0.0.1:5432
    session.run(
        "pytest",
        # These tests never import Django settings (which need SECRET_KEY); pytest-django stays out of it.
        "-p",
        "no:django",
        "-W",
        "ignore:Unknown config option:pytest.PytestConfigWarning",
        *(session.posargs or ["tests/container"]),
    )


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """Load suite (not in the default list): runserver vs gunicorn + Uvicorn worker vs gunicorn asgi worker on
    PostgreSQL, locust + wrk, report in reports/load. Runner options after ``--``, e.g. ``-- --baseline FILE``."""
    install_locked(session)
    ensure_postgres(session)
    ensure_debian_packages(session, {"wrk": "wrk"})
    session.run("python", "-m", "loadtests.runner", "--out", "reports/load", *session.posargs)


@nox.session(python=PYTHON)
def rollout(session: nox.Session) -> None:
    """The full rolling-deploy drill (not in the default list): 3 pods behind Debian's nginx, customer load, every
    pod replaced with the manifests' preStop, lag and grace; fails when a request or a dispense is lost. Drill
    options after ``--``, e.g. ``-- --pods 4 --json reports/rollout.json``."""
    install_locked(session)
    ensure_postgres(session)
    ensure_debian_packages(session, {"nginx": "nginx"})
    session.run("invoke", "drill-rollout", *session.posargs)
