"""``invoke serve --prod`` for real, with a platform's WEB_CONCURRENCY in the shell (issue 11, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.processes import free_port, wait_until
from devtools.stack import stop_process, wait_http_ok

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_serve_prod_starts_with_an_invalid_web_concurrency_and_says_so(tmp_path):
    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "WEB_CONCURRENCY": "abc", "VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    for key in ("DATABASE_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE"):
        env.pop(key, None)
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "invoke", "serve", "--prod", f"--port={port}", f"--sandbox-port={sandbox_port}"]
    with log.open("wb") as out:
        serve = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", timeout=180, proc=serve)
        wait_until(lambda: "Ctrl-C to stop" in log.read_text(errors="replace"), timeout=30, what="the ready banner")
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0
    finally:
        stop_process(serve, timeout=30)
    output = log.read_text(errors="replace")
    assert "WEB_CONCURRENCY='abc' is not passed to the server" in output
    assert "Generated a local FIELD_ENCRYPTION_KEYS key" in output
    assert (tmp_path / "var" / "field_encryption_key").exists() and (tmp_path / "var" / "coffee.sqlite3").exists()


@pytest.mark.timeout(240)
def test_ctrl_c_while_the_banner_is_printed_still_stops_server_and_sandbox(tmp_path):
    """Ctrl-C as soon as the server answers — while the banner still checks for a superuser — stops both
    children (it used to kill invoke and leave gunicorn and the sandbox running)."""
    from devtools.processes import connection_refused

    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    for key in ("DATABASE_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE", "WEB_CONCURRENCY"):
        env.pop(key, None)
    argv = [sys.executable, "-m", "invoke", "serve", "--prod", f"--port={port}", f"--sandbox-port={sandbox_port}"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", timeout=180, proc=serve)
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0, log.read_text(errors="replace")
        assert connection_refused(port) and connection_refused(sandbox_port)
    finally:
        stop_process(serve, timeout=30)
