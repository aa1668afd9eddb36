"""Bad values of the variables read before Django's settings or outside the env dialect's parsers: each falls back
with a warning naming the variable; none stops gunicorn from reading its config file or Django from booting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coffee_payment.monitoring.directory import prepare_dir

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


def _boot(argv: list[str], *, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    """Run ``argv`` as a fresh process with this environment minus the settings module, the database URL and any
    GUNICORN_* variable, plus a SECRET_KEY and ``env``; its output captured as text."""
    dropped = ("GUNICORN_", "DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    full = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    full.update({"SECRET_KEY": "x" * 50, **env})
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=100)


@pytest.mark.parametrize("kind", ["missing-parent", "a-file", "relative", "read-only"])
def test_an_unusable_metrics_directory_falls_back_to_a_fresh_one_with_a_warning(tmp_path, capsys, kind):
    """Was: PROMETHEUS_MULTIPROC_DIR=/proc/nope or a file → FileNotFoundError/FileExistsError, and gunicorn
    "Failed to read config file" (no server at all); a relative one was used relative to whatever the cwd was."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    configured = {
        "missing-parent": "/proc/no-such-dir/metrics",
        "a-file": str(a_file),
        "relative": "metrics-here",
        "read-only": "/proc",  # a directory no one, root included, can create files in
    }[kind]
    env = {"PROMETHEUS_MULTIPROC_DIR": configured}
    path, created = prepare_dir(env, shm=str(tmp_path))
    assert created and path.is_dir() and path.parent == tmp_path
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(path)  # what the workers inherit
    warning = capsys.readouterr().err
    assert warning.startswith(f"WARNING: PROMETHEUS_MULTIPROC_DIR={configured!r} ") and str(path) in warning
    assert not (Path.cwd() / "metrics-here").exists()


@pytest.mark.timeout(120)
def test_gunicorn_reads_its_config_with_an_unusable_metrics_directory(tmp_path):
    done = _boot(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--check-config",
            "coffee_payment.asgi:application",
        ],
        PROMETHEUS_MULTIPROC_DIR="/proc/no-such-dir",
        VAR_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "Failed to read config file" not in done.stderr
    assert "WARNING: PROMETHEUS_MULTIPROC_DIR='/proc/no-such-dir' is not a usable directory" in done.stderr


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "is not an absolute path"),
        ("relative/var", "is not an absolute path"),
        ("/proc/no-such-dir/var", "cannot be created (No such file or directory)"),
    ],
)
def test_a_bad_var_dir_falls_back_to_the_default_with_a_warning(raw, problem):
    """Was: VAR_DIR="" silently put the SQLite file in the current directory, a relative one relative to it, and an
    uncreatable one crashed settings with a FileNotFoundError traceback."""
    code = "import coffee_payment.settings as s; print(s.VAR_DIR); print(s.DATABASES['default']['NAME'])"
    done = _boot([sys.executable, "-c", code], VAR_DIR=raw)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(ROOT / "var"), str(ROOT / "var" / "coffee.sqlite3")]
    assert done.stderr.splitlines() == [f"WARNING: VAR_DIR={raw!r} {problem}; using {ROOT / 'var'}"]
    assert not (ROOT / "relative").exists()


@pytest.mark.parametrize(
    ("environ", "host", "warned"),
    [
        ({}, "0.0.0.0", False),
        ({"GUNICORN_BIND_HOST": "::1"}, "::1", False),
        ({"GUNICORN_BIND_HOST": "nonsense"}, "0.0.0.0", False),  # gunicorn.conf.py warned already
        ({"GUNICORN_BIND_HOST": "nonsense", "METRICS_BIND_HOST": "127.0.0.1"}, "127.0.0.1", False),
        ({"GUNICORN_BIND_HOST": "127.0.0.1", "METRICS_BIND_HOST": "pod.local"}, "127.0.0.1", True),
    ],
)
def test_the_metrics_listener_binds_a_resolved_address(capsys, environ, host, warned):
    """Was: with METRICS_BIND_HOST unset, the raw GUNICORN_BIND_HOST — one the server had replaced by 0.0.0.0 with
    a warning — was the listener's address: 'Metrics listener on nonsense:9464 failed', metrics off."""
    from coffee_payment.serving.metrics_hooks import metrics_host

    assert metrics_host(environ) == host
    assert ("WARNING: METRICS_BIND_HOST=" in capsys.readouterr().err) is warned


HUGE = "99999999999999999999999"
# (variable, settings name) of every number Django's settings read; each must refuse an absurd value.
NUMBERS = [
    ("ADMIN_LOGIN_COOLOFF_MINUTES", "AXES_COOLOFF_TIME"),
    ("ADMIN_SESSION_AGE_S", "SESSION_COOKIE_AGE"),
    ("ADMIN_LOGIN_FAILURE_LIMIT", "AXES_FAILURE_LIMIT"),
    ("PAYMENT_REFRESH_INTERVAL_S", "PAYMENT_REFRESH_INTERVAL_S"),
    ("ORDER_EXPIRATION_MINUTES", "ORDER_EXPIRATION_MINUTES"),
    ("DEVICE_ONLINE_THRESHOLD_MINUTES", "DEVICE_ONLINE_THRESHOLD_MINUTES"),
    ("FAST_TRACK_LIMIT_S", "FAST_TRACK_LIMIT_S"),
    ("RECONCILE_MIN_AGE_S", "RECONCILE_MIN_AGE_S"),
    ("DISPENSE_SWEEP_GRACE_S", "DISPENSE_SWEEP_GRACE_S"),
    ("NOTIFICATION_MAX_BODY_BYTES", "NOTIFICATION_MAX_BODY_BYTES"),
    ("NOTIFICATION_RETENTION_DAYS", "NOTIFICATION_RETENTION_DAYS"),
    ("NOTIFICATION_REJECTED_RETENTION_DAYS", "NOTIFICATION_REJECTED_RETENTION_DAYS"),
    ("NOTIFICATION_UNRESOLVED_RETENTION_DAYS", "NOTIFICATION_UNRESOLVED_RETENTION_DAYS"),
    ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "RATE_LIMIT_WEBHOOK_PER_MINUTE"),
    ("RATE_LIMIT_INITIATE_PER_MINUTE", "RATE_LIMIT_INITIATE_PER_MINUTE"),
    ("PROVIDER_VERIFY_REUSE_S", "PROVIDER_VERIFY_REUSE_S"),
    ("DEVICE_OPEN_PAYMENTS_MAX", "DEVICE_OPEN_PAYMENTS_MAX"),
    ("TMETR_CONNECT_TIMEOUT_S", "TMETR_CONNECT_TIMEOUT_S"),
    ("TMETR_READ_TIMEOUT_S", "TMETR_READ_TIMEOUT_S"),
    ("PROVIDER_CONNECT_TIMEOUT_S", "PROVIDER_CONNECT_TIMEOUT_S"),
    ("PROVIDER_READ_TIMEOUT_S", "PROVIDER_READ_TIMEOUT_S"),
    ("SECURE_HSTS_SECONDS", "SECURE_HSTS_SECONDS"),
    ("DB_STATEMENT_TIMEOUT_S", "DB_STATEMENT_TIMEOUT_S"),
    ("DB_LOCK_TIMEOUT_S", "DB_LOCK_TIMEOUT_S"),
    ("SQLITE_BUSY_TIMEOUT_S", "DATABASES"),
]


@pytest.mark.timeout(120)
def test_an_absurdly_large_number_falls_back_with_a_warning_for_every_setting():
    """Was: ADMIN_LOGIN_COOLOFF_MINUTES=1e23 → OverflowError at boot (timedelta), and e.g. PAYMENT_REFRESH_INTERVAL_S
    or ORDER_EXPIRATION_MINUTES passed, to overflow a timedelta on every status poll or scan (500s)."""
    names = [setting for _, setting in NUMBERS]
    code = f"import coffee_payment.settings as s; print(repr([getattr(s, n) for n in {names!r}]))"
    baseline = _boot([sys.executable, "-c", code], VAR_DIR=str(ROOT / "var"))
    assert baseline.returncode == 0, baseline.stderr
    done = _boot([sys.executable, "-c", code], VAR_DIR=str(ROOT / "var"), **dict.fromkeys(dict(NUMBERS), HUGE))
    assert done.returncode == 0, done.stderr
    assert done.stdout == baseline.stdout  # every one at its default
    warned = {line.split("=", 1)[0].removeprefix("WARNING: ") for line in done.stderr.splitlines()}
    assert warned >= {variable for variable, _ in NUMBERS}
    assert all("is out of range" in line for line in done.stderr.splitlines())


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("raw", "problem"),
    [("-1", "is not an absolute path"), ("", "is empty"), ("/proc", "is not a usable directory")],
)
def test_outside_gunicorn_an_unusable_metrics_directory_keeps_metrics_in_process(tmp_path, raw, problem):
    """Was (manage.py, runserver, cron jobs: no gunicorn master to prepare the directory): "-1" crashed at the first
    metric with FileNotFoundError '-1/gauge_livesum_<pid>.db'; "" wrote the metric files into the working
    directory."""
    code = "from coffee_payment.monitoring import metrics; metrics.HTTP_IN_FLIGHT.inc(); print('metric written')"
    done = _boot(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=tmp_path,
        PROMETHEUS_MULTIPROC_DIR=raw,
        VAR_DIR=str(tmp_path / "var"),
    )
    assert done.returncode == 0, done.stderr
    assert "metric written" in done.stdout
    assert f"WARNING: PROMETHEUS_MULTIPROC_DIR={raw!r} {problem}" in done.stderr
    assert "in-process metrics" in done.stderr
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.timeout(120)
def test_a_large_count_is_kept_it_is_no_duration_that_could_overflow():
    """The harnesses turn the open-payments bound off with DEVICE_OPEN_PAYMENTS_MAX=1000000 (devtools.stack
    ONE_CLIENT_ENV). Was, with a maximum of 10 000: the bound fell back to its default 5, and the sixth Pay of a test
    on one machine got 429 "too many payments are open"."""
    names = ["DEVICE_OPEN_PAYMENTS_MAX", "RATE_LIMIT_WEBHOOK_PER_MINUTE", "RATE_LIMIT_INITIATE_PER_MINUTE"]
    code = f"import coffee_payment.settings as s; print([getattr(s, n) for n in {names!r}])"
    done = _boot([sys.executable, "-c", code], VAR_DIR=str(ROOT / "var"), **dict.fromkeys(names, "1000000"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1000000, 1000000, 1000000]"
    assert "WARNING" not in done.stderr
