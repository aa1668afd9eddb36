"""Sessions lint, unit, integration and container run by default; load and rollout only when asked for (nox -s load).

Every session installs the project from uv.lock into its own virtualenv (uv sync --frozen), so it runs the exact
versions the Docker image ships.
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
# `nox -l` shows each session's first docstring line: one whole sentence (tests/unit/test_commands.py checks it).


def install_locked(session: nox.Session) -> None:
    """Install the locked runtime + dev dependencies into the session's virtualenv, quietly.

    Bytecode is compiled once here (a no-op when nothing changed): every server, worker and sandbox process the
    tests start would otherwise compile Django & co. from source again where PYTHONDONTWRITEBYTECODE is set.
    """
    session.run_install(
        "uv",
        "sync",
        "--quiet",
        "--compile-bytecode",
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
    """Ruff (lint and format) over the code, hadolint over the Dockerfile, msgfmt over the Russian catalog."""
    install_locked(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("hadolint", "Dockerfile")
    # The committed Russian catalog must compile with GNU gettext (format strings checked); the .mo beside it is
    # compared with the .po by tests/unit/test_translations.py.
    ensure_debian_packages(session, {"msgfmt": "gettext"})
    session.run("msgfmt", "--check", "-o", os.devnull, "locale/ru/LC_MESSAGES/django.po", external=True)


def pytest_args(session: nox.Session, tests: str, *options: str) -> list[str]:
    """pytest's arguments: ``options``, the 10 slowest tests listed, then the session's posargs.

    ``tests`` (a directory) is run unless the posargs name tests themselves (a path under tests/), so
    ``nox -s integration -- -k flow`` selects among the integration tests only.
    """
    names_tests = any(arg.startswith("tests/") or arg.startswith("tests" + os.sep) for arg in session.posargs)
    return [*options, "--durations=10", *([] if names_tests else [tests]), *session.posargs]


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tests of pure logic and in-process Django, no servers, spread over every CPU; promtool checks the alerts."""
    install_locked(session)
    ensure_debian_packages(session, {"promtool": "prometheus"})
    # Parallel-safe: each xdist worker is its own process with its own SQLite test database (tests/settings.py).
    session.run("pytest", *pytest_args(session, "tests/unit", "-n", "auto"))


# The integration tests' parallel pass: files spread over this many pytest-xdist workers (whole files, so a module's
# stack starts once). The tests wait on servers more than they compute, so 3 workers keep 2 cores busy.
INTEGRATION_WORKERS = "3"


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Integration tests with real servers over loopback HTTP, on SQLite and PostgreSQL, and headless Chromium.

    Real gunicorn/runserver/sandbox processes on free loopback ports; Chromium is Debian's, installed if missing.
    Two passes (see below); with arguments after ``--`` one pass, one test at a time (``-- -n 2`` to spread it).
    """
    install_locked(session)
    ensure_postgres(session)
    ensure_debian_packages(session, {"chromium": "chromium", "nginx": "nginx"})
    if session.posargs:
        session.run("pytest", *pytest_args(session, "tests/integration", "-n", "0"))
        return
    # Pass 1, files side by side: request/response tests on their own stacks, where a busy neighbour only makes a
    # request slower. Pass 2, one test at a time: the tests marked `serial` (tests/integration/conftest.py) —
    # drills, signals, recycling, makes racing a slow Tmetr — judge real timings on a 2-core machine, and a
    # neighbour would make those verdicts depend on it (run side by side they flaked).
    # Files in collection order, longest first (tests/integration/conftest.py), not xdist's by number of tests.
    parallel = ("-m", "not serial", "-n", INTEGRATION_WORKERS, "--dist", "loadfile", "--no-loadscope-reorder")
    session.run("pytest", *pytest_args(session, "tests/integration", *parallel))
    session.run("pytest", *pytest_args(session, "tests/integration", "-m", "serial", "-n", "0"))


@nox.session(python=PYTHON)
def container(session: nox.Session) -> None:
    """The container image built from the unchanged Dockerfile and run for real in both RUN_MODEs.

    A private dockerd (root; Debian's docker.io, installed if missing), a local stand-in python:3.11-slim
    (debootstrap, cached in /var/cache/coffee-container), the legacy builder; hadolint, lock sync. Cleans up
    after itself.
    """
    install_locked(session)
    ensure_postgres(session)  # the containers (--network host) use 127.0.0.1:5432
    # These tests never import Django settings (which need SECRET_KEY); pytest-django stays out of it.
    options = ("-p", "no:django", "-W", "ignore:Unknown config option:pytest.PytestConfigWarning")
    session.run("pytest", *pytest_args(session, "tests/container", *options))


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """Load suite comparing runserver and gunicorn's two ASGI workers under locust and wrk, not run by default.

    On PostgreSQL; report in reports/load. Runner options after --, e.g. ``nox -s load -- --baseline FILE``.
    """
    install_locked(session)
    ensure_postgres(session)
    ensure_debian_packages(session, {"wrk": "wrk"})
    session.run("python", "-m", "loadtests.runner", "--out", "reports/load", *session.posargs)


@nox.session(python=PYTHON)
def rollout(session: nox.Session) -> None:
    """The full rolling-deploy drill of 3 pods behind Debian's nginx under customer load (not in the default list).

    Every pod is replaced with the manifests' preStop, lag and grace; it fails when a request or a dispense is
    lost. Drill options after ``--``, e.g. ``-- --pods 4 --json reports/rollout.json``."""
    install_locked(session)
    ensure_postgres(session)
    ensure_debian_packages(session, {"nginx": "nginx"})
    session.run("invoke", "drill-rollout", *session.posargs)
