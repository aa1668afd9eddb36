"""nox sessions: lint, unit, integration, container (image built and run for real), load.

Every session installs the project from ``uv.lock`` into its own virtualenv (``uv sync --frozen``), so a
session runs the exact versions the Docker image ships.
"""

from __future__ import annotations

import nox

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


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff over the code; hadolint over the Dockerfile."""
    install_locked(session)
    session.run("ruff", "check", ".")
    session.run("hadolint", "Dockerfile")


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tests: pure logic and in-process Django (no servers)."""
    install_locked(session)
    session.run("pytest", *(session.posargs or ["tests/unit"]))


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Integration tests: real gunicorn/runserver/sandbox processes over loopback HTTP, SQLite and PostgreSQL."""
    install_locked(session)
    session.run("pytest", *(session.posargs or ["tests/integration"]))


@nox.session(python=PYTHON)
def container(session: nox.Session) -> None:
    """The image built and run for real: a private dockerd (root; Debian's docker.io, installed if missing), a
    local stand-in python:3.11-slim (debootstrap, cached in /var/cache/coffee-container), the Dockerfile built
    unchanged with the legacy builder and run in both RUN_MODEs; hadolint, lock sync. Cleans up after itself."""
    install_locked(session)
    session.run(
        "pytest",
        # These tests never import Django settings (which need SECRET_KEY); pytest-django stays out of it.
        "-p",
        "no:django",
        "-W",
        "ignore:Unknown config option:pytest.PytestConfigWarning",
        *(session.posargs or ["tests/container"]),
    )
