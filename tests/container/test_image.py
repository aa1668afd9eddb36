"""The project's image built and run for real, in both RUN_MODEs, against PostgreSQL on 127.0.0.1:5432.

Containers use ``--network host`` (the private dockerd has no bridge) and bind 127.0.0.1 on a free port
(GUNICORN_BIND_HOST / GUNICORN_PORT, which runserver honours too through entrypoint.sh).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest

from tools.container.dockerd import PrivateDockerd
from tools.container.testsupport import (
    free_port,
    fresh_database,
    http_status,
    postgres_available,
    query,
    wait_for_status,
)

APP_UID = 10001
GRACEFUL_TIMEOUT = 30  # gunicorn.conf.py default (GUNICORN_TIMEOUT)
SUPERUSER = "ct-admin"


@pytest.fixture(autouse=True, scope="module")
def _postgres_running() -> None:
    assert postgres_available(), "PostgreSQL must run on 127.0.0.1:5432 (the nox session starts it)"


class Running:
    def __init__(self, daemon: PrivateDockerd, name: str, mode: str, port: int, database_url: str) -> None:
        self.daemon, self.name, self.mode, self.port, self.database_url = (
            daemon,
            name,
            mode,
            port,
            database_url,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.daemon.docker("exec", self.name, *cmd, check=check, capture=True, timeout=30)

    def inspect(self, template: str) -> str:
        return self.daemon.docker("inspect", "-f", template, self.name, capture=True).stdout.strip()

    def is_running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"


@pytest.mark.timeout(900)
def test_image_builds_from_the_lock_and_is_configured(dockerd: PrivateDockerd, image: str) -> None:
    config = json.loads(dockerd.docker("image", "inspect", image, capture=True).stdout)[0]["Config"]
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["Entrypoint"] == ["/app/entrypoint.sh"]
    assert config["Cmd"] == ["serve"]
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    # The build-time key for collectstatic must not reach the runtime environment.
    assert not any(e.startswith(("SECRET_KEY=", "DEBUG=")) for e in config["Env"]), config["Env"]
    # collectstatic ran at build.
    out = dockerd.docker("run", "--rm", "--network", "none", image, "ls", "/app/staticfiles/admin/css", capture=True)
    assert "base.css" in out.stdout
    # .dockerignore kept the repository's state and tooling out; the runtime pieces are in.
    listing = dockerd.docker("run", "--rm", "--network", "none", image, "ls", "-A", "/app", capture=True).stdout.split()
    for present in ("manage.py", "gunicorn.conf.py", "entrypoint.sh", "coffee_payment", "staticfiles", "var"):
        assert present in listing, listing
    for absent in (".git", ".venv", ".env", "tests", "tools", "devtools", "loadtests", "noxfile.py"):
        assert absent not in listing, listing


@pytest.fixture(scope="module", params=["production", "development"])
def container(request: pytest.FixtureRequest, dockerd: PrivateDockerd, image: str, timings: dict[str, float]):
    mode = request.param
    port = free_port()
    name = f"coffee-ct-{mode}-{secrets.token_hex(3)}"
    with fresh_database("coffee_ct") as database_url:
        env = {
            "RUN_MODE": mode,
            "GUNICORN_BIND_HOST": "127.0.0.1",
            "GUNICORN_PORT": str(port),
            "GUNICORN_WORKERS": "2",
            "DATABASE_URL": database_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SUPERUSER_USERNAME": SUPERUSER,
            "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
            "DJANGO_SUPERUSER_EMAIL": "ct-admin@example.com",
        }
        if mode == "development":
            env["DEBUG"] = "1"
        args = ["run", "-d", "--name", name, "--network", "host"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        started = time.monotonic()
        dockerd.docker(*args, image, capture=True, timeout=60)
        running = Running(dockerd, name, mode, port, database_url)
        try:
            wait_for_status(f"{running.url}/health", timeout=90, alive=running.is_running)
            timings[f"{mode}: docker run to /health 200"] = round(time.monotonic() - started, 2)
            yield running
        finally:
            logs = dockerd.docker("logs", name, check=False, capture=True)
            print(f"--- docker logs {name} ---\n{logs.stdout}{logs.stderr}")
            dockerd.docker("rm", "-f", name, check=False, capture=True, timeout=60)


@pytest.mark.timeout(300)
def test_health_answers_200(container: Running) -> None:
    assert http_status(f"{container.url}/health") == 200


@pytest.mark.timeout(120)
def test_pid1_is_the_server(container: Running) -> None:
    argv = container.exec("cat", "/proc/1/cmdline").stdout.split("\0")
    if container.mode == "production":
        assert any(arg.rsplit("/", 1)[-1] == "gunicorn" for arg in argv[:2]), argv
        assert "coffee_payment.asgi:application" in argv, argv
    else:
        assert argv[1:3] == ["manage.py", "runserver"], argv


@pytest.mark.timeout(120)
def test_server_runs_as_the_fixed_non_root_uid(container: Running) -> None:
    status = container.exec("cat", "/proc/1/status").stdout
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == [str(APP_UID)] * 4, status
    # Code is not writable by the app user; var/ (the SQLite default) is.
    assert container.exec("test", "-w", "/app/manage.py", check=False).returncode != 0
    assert container.exec("test", "-w", "/app/var").returncode == 0


@pytest.mark.timeout(120)
def test_image_healthcheck_command_passes(container: Running) -> None:
    test = json.loads(container.inspect("{{json .Config.Healthcheck.Test}}"))
    assert test[0] == "CMD"
    assert container.exec(*test[1:], check=False).returncode == 0


@pytest.mark.timeout(120)
def test_migrations_applied_and_superuser_created(container: Running) -> None:
    assert query(container.database_url, "SELECT count(*) FROM django_migrations")[0][0] > 0
    rows = query(container.database_url, "SELECT is_superuser FROM auth_user WHERE username = %s", (SUPERUSER,))
    assert rows == [(True,)]


@pytest.mark.timeout(120)
def test_docker_stop_is_graceful(container: Running, timings: dict[str, float]) -> None:
    """`docker stop` sends TERM to PID 1; it must exit 0 well within the graceful timeout."""
    started = time.monotonic()
    container.daemon.docker("stop", "-t", str(GRACEFUL_TIMEOUT + 10), container.name, capture=True, timeout=90)
    elapsed = time.monotonic() - started
    timings[f"{container.mode}: docker stop (TERM -> exited)"] = round(elapsed, 2)
    assert container.inspect("{{.State.ExitCode}}") == "0"
    assert container.inspect("{{.State.OOMKilled}}") == "false"
    assert elapsed < GRACEFUL_TIMEOUT / 3, f"docker stop took {elapsed:.1f}s"
