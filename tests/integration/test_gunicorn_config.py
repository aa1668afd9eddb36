"""gunicorn.conf.py with real gunicorn processes: --check-config, worker counts, WEB_CONCURRENCY, CMD_ARGS."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from devtools.processes import (
    APP,
    PROJECT_ROOT,
    connection_refused,
    running_gunicorn,
    serving_env,
)
from tests.unit.test_serving_env import BAD_FOR_ALL, BAD_FOR_SOME, DEFAULTS

# Row i sets every integer variable to its i-th bad value at once: one --check-config run per row.
_COLUMNS = {name: BAD_FOR_ALL + BAD_FOR_SOME[name] for name in DEFAULTS}
BAD_ROWS = [
    {name: values[i] for name, values in _COLUMNS.items() if i < len(values)}
    for i in range(max(len(values) for values in _COLUMNS.values()))
]


def _check_config(env_overrides: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    env = serving_env(8000, {"GUNICORN_BIND_HOST": None, "GUNICORN_PORT": None, **env_overrides})
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py", APP],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(90)
def test_check_config_clean_for_defaults():
    result = _check_config({})
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.timeout(90)
@pytest.mark.parametrize("row", BAD_ROWS, ids=[repr(row.get("GUNICORN_PORT", "")) for row in BAD_ROWS])
def test_check_config_clean_for_bad_values(row: dict[str, str]):
    result = _check_config(row)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name, value in row.items():
        warnings = [line for line in result.stderr.splitlines() if line.startswith(f"WARNING: {name}=")]
        assert len(warnings) == 1, (name, value, result.stderr)
        assert warnings[0].startswith(f"WARNING: {name}={value!r} ")
        assert warnings[0].endswith(f"; using {DEFAULTS[name][1]}")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers", [1, 3])
def test_starts_n_workers_on_the_configured_port(workers: int):
    with running_gunicorn(workers=workers) as server:
        assert len(server.worker_pids()) == workers
        assert httpx.get(server.url("/health")).json() == {"status": "ok"}
        assert f'"workers": {workers}' in server.logs()
        assert f"Listening at: http://127.0.0.1:{server.port}" in server.logs()


@pytest.mark.timeout(90)
def test_web_concurrency_is_ignored_with_a_warning():
    with running_gunicorn(workers=2, env={"WEB_CONCURRENCY": "5"}) as server:
        assert len(server.worker_pids()) == 2
        assert "WEB_CONCURRENCY='5' is ignored; using GUNICORN_WORKERS -> 2" in server.logs()


@pytest.mark.timeout(90)
def test_gunicorn_cmd_args_wins_but_is_logged():
    with running_gunicorn(env={"GUNICORN_WORKERS": "1", "GUNICORN_CMD_ARGS": "--workers 2"}, workers=2) as server:
        logs = server.logs()
        assert "GUNICORN_CMD_ARGS='--workers 2' overrides gunicorn.conf.py" in logs
        assert "workers=2 overridden by GUNICORN_CMD_ARGS or the command line (env resolved 1)" in logs


@pytest.mark.timeout(90)
def test_zero_workers_from_cmd_args_still_serves():
    with running_gunicorn(env={"GUNICORN_CMD_ARGS": "--workers 0"}, workers=1) as server:
        assert "workers=0 would never serve; using 1" in server.logs()


@pytest.mark.timeout(120)
def test_two_servers_side_by_side_and_bad_env_never_crashes():
    """No shared control socket (gunicorn 27 default); bad values everywhere still serve on the default count."""
    bad = {"GUNICORN_TIMEOUT": "0x10", "GUNICORN_KEEPALIVE": "-1", "GUNICORN_MAX_REQUESTS": "1.5"}
    with running_gunicorn(workers=1) as first, running_gunicorn(env={**bad, "GUNICORN_WORKERS": ""}) as second:
        second.wait_ready(workers=4)
        assert httpx.get(first.url("/health")).status_code == 200
        assert httpx.get(second.url("/health")).status_code == 200
        assert "Control socket" not in first.logs() + second.logs()
    assert connection_refused(first.port) and connection_refused(second.port)
