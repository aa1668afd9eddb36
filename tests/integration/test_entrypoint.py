"""entrypoint.sh run for real (no container) as PID 1 of a new PID namespace, against PostgreSQL, in both modes.

`unshare --pid --fork --mount-proc sh entrypoint.sh` makes the entrypoint -- and the server it execs -- PID 1
inside the namespace, as in a container: TERM goes to that process (the unshare child), and unshare exits
with its status. Each mode gets a fresh database and two starts: migrations applied, the superuser created by
the first start only, the second start succeeds, TERM stops each start gracefully with exit code 0.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.processes import child_pids, wait_until
from tools.container.testsupport import free_port, fresh_database, query, wait_for_status

REPO = Path(__file__).resolve().parents[2]
SUPERUSER = "ep-admin"
GRACEFUL_TIMEOUT = 30  # gunicorn.conf.py's default

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True, scope="module")
def _pid_namespace_possible() -> None:
    assert os.geteuid() == 0 and shutil.which("unshare"), "needs root and unshare for a PID namespace (as on CI)"


def _pid1_of(unshare: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """The host pid of the namespace's PID 1: unshare's only child."""

    def first_child() -> int | None:
        children = child_pids(unshare.pid)
        if not children and unshare.poll() is not None:
            raise RuntimeError("unshare exited and started no child")
        return children[0] if children else None

    try:
        return wait_until(first_child, timeout=timeout)
    except TimeoutError:
        raise RuntimeError("unshare started no child") from None


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _start_and_stop(
    mode: str,
    database_url: str,
    tmp_path: Path,
    run: int,
    extra_env: dict[str, str | None] | None = None,
    check_pid1: Callable[[int], None] | None = None,
) -> str:
    """One start of entrypoint.sh: wait for /health, check PID 1 (and ``check_pid1(host pid)``), TERM it, expect
    exit 0. ``extra_env`` overrides the environment last (None unsets). Returns its log."""
    port = free_port()
    env = {
        **os.environ,
        # This interpreter's environment (the nox session's venv) provides python and gunicorn.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "RUN_MODE": mode,
        "GUNICORN_BIND_HOST": "127.0.0.1",
        "GUNICORN_PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "METRICS_PORT": "0",  # tests side by side: no fixed metrics port
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DEBUG": "1" if mode == "development" else "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SUPERUSER_USERNAME": SUPERUSER,
        "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
        "DJANGO_SUPERUSER_EMAIL": "ep-admin@example.com",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("SKIP_MIGRATIONS", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "DJANGO_SETTINGS_MODULE"):
        env.pop(key, None)
    for key, value in (extra_env or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    log_path = tmp_path / f"{mode}-{run}.log"
    with open(log_path, "wb") as log:
        unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "sh", str(REPO / "entrypoint.sh")],
            cwd=tmp_path,  # entrypoint.sh changes to its own directory
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        pid1 = _pid1_of(unshare)
        wait_for_status(f"http://127.0.0.1:{port}/health", timeout=90, alive=lambda: unshare.poll() is None)
        argv = _cmdline(pid1)
        if mode == "production":
            assert any(Path(a).name == "gunicorn" for a in argv[:2]), argv  # exec'd: same pid as the sh
        else:
            assert argv[1:3] == ["manage.py", "runserver"], argv
        if check_pid1 is not None:
            check_pid1(pid1)
        started = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        returncode = unshare.wait(timeout=GRACEFUL_TIMEOUT + 10)
        elapsed = time.monotonic() - started
        output = log_path.read_text(errors="replace")
        assert returncode == 0, f"exit {returncode} after TERM\n{output}"
        assert elapsed < GRACEFUL_TIMEOUT / 3, f"TERM took {elapsed:.1f}s\n{output}"
        return output
    except BaseException:
        print(log_path.read_text(errors="replace"))
        raise
    finally:
        if unshare.poll() is None:
            # Killing the namespace's PID 1 kills everything in it.
            try:
                os.kill(_pid1_of(unshare, timeout=1), signal.SIGKILL)
            except (RuntimeError, ProcessLookupError, FileNotFoundError):
                pass
            os.killpg(unshare.pid, signal.SIGKILL)
            unshare.wait(timeout=10)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["production", "development"])
def test_entrypoint_as_pid1(mode: str, tmp_path: Path) -> None:
    with fresh_database("coffee_ep") as database_url:
        first = _start_and_stop(mode, database_url, tmp_path, 1)
        assert query(database_url, "SELECT count(*) FROM django_migrations")[0][0] > 0
        assert f"creating superuser '{SUPERUSER}'" in first
        rows = query(database_url, "SELECT is_superuser FROM auth_user WHERE username = %s", (SUPERUSER,))
        assert rows == [(True,)]

        second = _start_and_stop(mode, database_url, tmp_path, 2)
        assert "No migrations to apply." in second
        assert f"superuser '{SUPERUSER}' exists: left unchanged" in second
        assert "creating superuser" not in second
        assert query(database_url, "SELECT count(*) FROM auth_user")[0][0] == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("web_concurrency", "gunicorn_workers", "workers", "warning"),
    [
        ("abc", "2", 2, "WEB_CONCURRENCY='abc' is not an integer: unset"),
        ("", "2", 2, "WEB_CONCURRENCY='' is not an integer: unset"),
        ("3", None, 3, "WEB_CONCURRENCY=3 taken as GUNICORN_WORKERS and unset"),
        ("3", "1", 1, "WEB_CONCURRENCY=3 unset: GUNICORN_WORKERS=1 applies"),
    ],
)
def test_a_platforms_web_concurrency_never_crashes_the_start(
    tmp_path: Path, web_concurrency: str, gunicorn_workers: str | None, workers: int, warning: str
) -> None:
    """gunicorn parses WEB_CONCURRENCY before gunicorn.conf.py and exits on a non-integer: the entrypoint
    neutralises it (issue 11). No database is touched: migrations skipped, no superuser."""

    def has_workers(pid1: int) -> None:
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: len(child_pids(pid1)) == workers, timeout=30, interval=0.1)
        assert len(child_pids(pid1)) == workers

    extra = {
        "WEB_CONCURRENCY": web_concurrency,
        "GUNICORN_WORKERS": gunicorn_workers,
        "SKIP_MIGRATIONS": "1",
        "DJANGO_SUPERUSER_USERNAME": None,
    }
    database_url = f"sqlite:///{tmp_path / 'untouched.sqlite3'}"
    output = _start_and_stop("production", database_url, tmp_path, 1, extra, has_workers)
    assert f"entrypoint: WARNING: {warning}" in output
    assert "is ignored; using GUNICORN_WORKERS" not in output  # gunicorn.conf.py never saw WEB_CONCURRENCY


@pytest.mark.timeout(120)
def test_entrypoint_fails_the_start_on_a_real_superuser_error(tmp_path: Path) -> None:
    """An invalid superuser (here: its email) must fail the start, not be mistaken for 'already exists'."""
    with fresh_database("coffee_ep") as database_url:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATABASE_URL": database_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "DJANGO_SUPERUSER_USERNAME": SUPERUSER,
            "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
            "DJANGO_SUPERUSER_EMAIL": "not-an-email",
        }
        # `--version` goes to gunicorn: had the entrypoint got past the superuser step, gunicorn would print it.
        result = subprocess.run(
            ["sh", str(REPO / "entrypoint.sh"), "--version"],
            env={**env, "RUN_MODE": "production"},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert result.returncode != 0
        assert "gunicorn (version" not in result.stdout
        # Management commands speak LANGUAGE_CODE (ru): the e-mail validator's message, in either language.
        assert "valid email" in result.stderr or "адрес электронной почты" in result.stderr, result.stderr
        assert query(database_url, "SELECT count(*) FROM auth_user")[0][0] == 0


@pytest.mark.timeout(60)
def test_entrypoint_execs_other_commands_without_preparing(tmp_path: Path) -> None:
    """`entrypoint.sh COMMAND ...` runs COMMAND as-is: no migrations (no database needed at all)."""
    env = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "SECRET_KEY": "x"}
    result = subprocess.run(
        ["sh", str(REPO / "entrypoint.sh"), "sh", "-c", "echo hello from $0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() == "hello from sh"
    assert "migrations" not in result.stderr
