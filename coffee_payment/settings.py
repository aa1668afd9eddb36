"""Django settings for coffee_payment, read from the environment in the project's one env dialect.

Numbers, booleans and choices go through ``coffee_payment/env.py`` (strict base-10 integers, plain decimals,
``1/true/yes/on``/``0/false/no/off``; a bad value → the default and one warning naming the variable);
django-environ reads ``DATABASE_URL`` and the comma-separated lists. Every variable is listed in ``.env.example``
and the README. Semantic mistakes that a type cannot catch (e.g. a non-absolute BASE_URL) are system checks in
``coffee_payment/checks.py``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from coffee_payment.env import fallback, parse_bool, parse_choice, parse_int, parse_number
from coffee_payment.monitoring.directory import drop_if_unusable
from coffee_payment.monitoring.logformat import log_format as _log_format
from coffee_payment.serving.admin_url import admin_url_prefix

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
_env = os.environ


def _var_dir(default: Path = BASE_DIR / "var") -> Path:
    """``VAR_DIR``: an absolute directory, made if missing (SQLite file, local keys); an empty, relative or
    uncreatable one → the default and one warning naming the variable (was: "" meant the cwd, a bad one a crash)."""
    raw = _env.get("VAR_DIR")
    if raw is None:
        return default
    if not raw.startswith("/") or "\x00" in raw:
        fallback("VAR_DIR", raw, "is not an absolute path", default)
        return default
    try:
        Path(raw).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fallback("VAR_DIR", raw, f"cannot be created ({exc.strerror})", default)
        return default
    return Path(raw)


VAR_DIR = _var_dir()
drop_if_unusable(_env)  # before any app imports prometheus_client (it reads PROMETHEUS_MULTIPROC_DIR at import)

if parse_bool(_env, "READ_DOT_ENV_FILE", default=False):
    env.read_env(BASE_DIR / ".env")

DEBUG = parse_bool(_env, "DEBUG", default=False)

SECRET_KEY = _env.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (`invoke serve --prod` generates one for local runs)."
        )
    SECRET_KEY = "django-insecure-dev-only-key-do-not-use-in-production"

# Fernet keys for provider secrets at rest, newest first (coffee_payment/devices/encryption.py; rotation in
# docs/operations.md). Required when DEBUG is off (check --deploy: coffee_payment.E007).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
BASE_URL = _env.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # admin login throttling (see "Admin" below)
    "coffee_payment.devices",
    "coffee_payment.orders",
    "coffee_payment.payments",
]

MIDDLEWARE = [
    # Answers /health (and the other probes) before SecurityMiddleware/CommonMiddleware validate the Host.
    "coffee_payment.serving.middleware.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # Accept-Language picks ru (default) or en
    "coffee_payment.serving.middleware.NulQueryMiddleware",  # ?status=%00: a 400, not PostgreSQL's DataError
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: a view whose database work hit a timeout answers 503 with a reason (process_exception only).
    "coffee_payment.dbtimeouts.DatabaseTimeoutMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires: turns a lockout into its 429 page
]

# Customer paths (/v1/…) under ASGI: async-native middleware only (coffee_payment/serving/lean.py).
LEAN_MIDDLEWARE = [
    "coffee_payment.serving.lean.LeanSecurityMiddleware",
    "coffee_payment.serving.lean.LeanLocaleMiddleware",
    "coffee_payment.dbtimeouts.DatabaseTimeoutMiddleware",
]

ROOT_URLCONF = "coffee_payment.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "coffee_payment.wsgi.application"
ASGI_APPLICATION = "coffee_payment.asgi.application"

# --- Database -------------------------------------------------------------------------------------------
# Embedded default: a SQLite file in WAL mode with a busy timeout; IMMEDIATE transactions take the write lock
# at BEGIN, which serialises our read-modify-write steps (select_for_update is a no-op on SQLite).
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'coffee.sqlite3'}"
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=DEFAULT_DATABASE_URL)}
    DATABASES["default"]["ENGINE"]  # noqa: B018 - a URL without a known scheme parses to a dict without ENGINE
except (KeyError, ValueError, environ.ImproperlyConfigured) as exc:
    raise ImproperlyConfigured(
        f"DATABASE_URL={os.environ.get('DATABASE_URL')!r} is not a database URL: use "
        "postgres://user:password@host:5432/name or sqlite:////absolute/path/db.sqlite3"
    ) from exc
_db = DATABASES["default"]
# Seconds; PostgreSQL only (SQLite has its busy timeout). Read for every backend so the system check sees them.
DB_STATEMENT_TIMEOUT_S = parse_number(_env, "DB_STATEMENT_TIMEOUT_S", default=15.0, minimum=0.1, maximum=3600.0)
DB_LOCK_TIMEOUT_S = parse_number(_env, "DB_LOCK_TIMEOUT_S", default=5.0, minimum=0.1, maximum=3600.0)
_db["CONN_MAX_AGE"] = 0  # under ASGI each sync view runs in its own thread: persistent connections leak
if _db["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db["OPTIONS"] = {
        "timeout": parse_number(_env, "SQLITE_BUSY_TIMEOUT_S", default=20.0, minimum=0.1, maximum=3600.0),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif _db["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
    _db["ENGINE"] = "django.db.backends.postgresql"
    # psycopg 3 connection pool per worker process (Django >= 5.1). Total server connections =
    # replicas x workers x DB_POOL_MAX_SIZE (see docs/deployment.md).
    _pool_max = parse_int(_env, "DB_POOL_MAX_SIZE", default=4, minimum=1, maximum=1000)
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(parse_int(_env, "DB_POOL_MIN_SIZE", default=1, minimum=0, maximum=1000), _pool_max),
        "max_size": _pool_max,
        "timeout": parse_number(_env, "DB_POOL_TIMEOUT_S", default=10.0, minimum=0.1, maximum=3600.0),
    }
    # Every statement bounded on the server side (issue 9 item 6): a sync view blocked on a lock or a slow query
    # ends with an error (503 via coffee_payment.dbtimeouts) instead of outliving its worker's drain. Both must
    # stay below the drain budget (system check coffee_payment.E010, check --deploy).
    _options = _db["OPTIONS"].get("options", "")
    _db["OPTIONS"]["options"] = " ".join(
        part
        for part in (
            _options,
            f"-c statement_timeout={round(DB_STATEMENT_TIMEOUT_S * 1000)}",
            f"-c lock_timeout={round(DB_LOCK_TIMEOUT_S * 1000)}",
        )
        if part
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Russian first (the machines are in Russia), English on request through Accept-Language (coffee_payment/i18n.py).
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "servestatic.storage.CompressedStaticFilesStorage"
    },
}
# ServeStatic (the ASGI-capable fork of WhiteNoise): async file responses under uvicorn, no sync-iterator warning.
SERVESTATIC_USE_FINDERS = True  # serve admin assets even when collectstatic was not run

# --- Behind a proxy ---------------------------------------------------------------------------------------
# No SECURE_PROXY_SSL_HEADER: Django would believe X-Forwarded-Proto from any peer. Under gunicorn + Uvicorn workers
# the request scheme (and REMOTE_ADDR) already come from X-Forwarded-* of peers in GUNICORN_FORWARDED_ALLOW_IPS
# only (uvicorn's proxy-headers middleware sets the ASGI scope, which request.is_secure() reads). Issue 11.
if parse_bool(_env, "TRUST_X_FORWARDED_PROTO", default=False):
    fallback(
        "TRUST_X_FORWARDED_PROTO",
        os.environ["TRUST_X_FORWARDED_PROTO"],
        "is ignored (X-Forwarded-Proto counts only from GUNICORN_FORWARDED_ALLOW_IPS, applied by uvicorn)",
        "the scheme uvicorn resolved",
    )

# --- Business settings --------------------------------------------------------------------------------------
# Every number has a maximum: an absurd value (1e23 minutes) would otherwise pass and overflow a timedelta at boot
# (ADMIN_LOGIN_COOLOFF_MINUTES) or on every request that uses it (PAYMENT_REFRESH_INTERVAL_S: each status poll a 500).
# Counts (limits, not durations) only need to fit the database's integer: "a very large number" must keep meaning
# "no practical limit" (the harnesses set DEVICE_OPEN_PAYMENTS_MAX=1000000), not fall back to the small default.
_COUNT_MAX = 2**31 - 1
ORDER_EXPIRATION_MINUTES = parse_int(_env, "ORDER_EXPIRATION_MINUTES", default=15, minimum=1, maximum=7 * 24 * 60)
DEVICE_ONLINE_THRESHOLD_MINUTES = parse_int(
    _env, "DEVICE_ONLINE_THRESHOLD_MINUTES", default=15, minimum=1, maximum=7 * 24 * 60
)
FAST_TRACK_LIMIT_S = parse_int(_env, "FAST_TRACK_LIMIT_S", default=300, minimum=0, maximum=86400)
# Seconds between on-demand provider polls of one pending payment from the status JSON.
PAYMENT_REFRESH_INTERVAL_S = parse_number(_env, "PAYMENT_REFRESH_INTERVAL_S", default=5.0, minimum=0.0, maximum=3600.0)
# Seconds after which reconcile_payments polls a pending payment attempt.
RECONCILE_MIN_AGE_S = parse_int(_env, "RECONCILE_MIN_AGE_S", default=60, minimum=0, maximum=86400)
# Seconds an owed make (committed with make_pending, not sent) waits before the sweeper sends it; the process
# that committed it sends it at once, so this only matters when that process died.
DISPENSE_SWEEP_GRACE_S = parse_number(_env, "DISPENSE_SWEEP_GRACE_S", default=10.0, minimum=0.0, maximum=3600.0)
# --- The webhook surface (issue 11; docs/operations.md "Inbox retention" and "Rate limits") ----------------------
# A notification body above this is refused (413) before storage; real ones are a few KB.
NOTIFICATION_MAX_BODY_BYTES = parse_int(
    _env, "NOTIFICATION_MAX_BODY_BYTES", default=64 * 1024, minimum=1024, maximum=2 * 1024 * 1024
)
# prune_notifications keeps processed notifications this many days, rejected ones (junk) fewer, and the ones
# staff may still replay (error, retry, never processed) at least as long as the processed ones.
NOTIFICATION_RETENTION_DAYS = parse_int(_env, "NOTIFICATION_RETENTION_DAYS", default=30, minimum=1, maximum=3650)
NOTIFICATION_REJECTED_RETENTION_DAYS = parse_int(
    _env, "NOTIFICATION_REJECTED_RETENTION_DAYS", default=7, minimum=1, maximum=3650
)
NOTIFICATION_UNRESOLVED_RETENTION_DAYS = parse_int(
    _env, "NOTIFICATION_UNRESOLVED_RETENTION_DAYS", default=180, minimum=1, maximum=3650
)
# Requests per client address per minute, across workers and pods (0 = no limit); then 429.
RATE_LIMIT_WEBHOOK_PER_MINUTE = parse_int(
    _env, "RATE_LIMIT_WEBHOOK_PER_MINUTE", default=600, minimum=0, maximum=_COUNT_MAX
)
RATE_LIMIT_INITIATE_PER_MINUTE = parse_int(
    _env, "RATE_LIMIT_INITIATE_PER_MINUTE", default=60, minimum=0, maximum=_COUNT_MAX
)
# Seconds a provider's answer about a payment is reused by notifications claiming the same outcome.
PROVIDER_VERIFY_REUSE_S = parse_number(_env, "PROVIDER_VERIFY_REUSE_S", default=3.0, minimum=0.0, maximum=3600.0)
# Open (unpaid, unexpired) provider payments one machine may have; Pay on yet another order answers 429.
DEVICE_OPEN_PAYMENTS_MAX = parse_int(_env, "DEVICE_OPEN_PAYMENTS_MAX", default=5, minimum=1, maximum=_COUNT_MAX)
# Tests and drills only (`check --deploy` refuses it): "die_before_make" SIGKILLs the process between the commit
# of make_pending and the make command, to prove the sweeper sends what a dead process owed.
SERVING_TEST_FAULTS = env.list("SERVING_TEST_FAULTS", default=[])

_SANDBOX = _env.get("SANDBOX_URL", "http://127.0.0.1:8001").rstrip("/")
SANDBOX_URL = _SANDBOX
TMETR_API_URL = _env.get("TMETR_API_URL", f"{_SANDBOX}/tmetr/")
# The sandbox's demo token is the default only while Tmetr itself is the sandbox default.
TMETR_TOKEN = _env.get("TMETR_TOKEN", "" if "TMETR_API_URL" in os.environ else "sandbox-tmetr-token")
TMETR_CONNECT_TIMEOUT_S = parse_number(_env, "TMETR_CONNECT_TIMEOUT_S", default=3.0, minimum=0.1, maximum=300.0)
TMETR_READ_TIMEOUT_S = parse_number(_env, "TMETR_READ_TIMEOUT_S", default=5.0, minimum=0.1, maximum=300.0)
TMETR_SIZE_WORDS = env.list("TMETR_SIZE_WORDS", default=["small", "medium", "big"])
YOOKASSA_API_URL = _env.get("YOOKASSA_API_URL", f"{_SANDBOX}/yookassa/v3/")
TBANK_API_URL = _env.get("TBANK_API_URL", f"{_SANDBOX}/tbank/v2/")
PROVIDER_CONNECT_TIMEOUT_S = parse_number(_env, "PROVIDER_CONNECT_TIMEOUT_S", default=3.0, minimum=0.1, maximum=300.0)
PROVIDER_READ_TIMEOUT_S = parse_number(_env, "PROVIDER_READ_TIMEOUT_S", default=10.0, minimum=0.1, maximum=300.0)

# Error pages and reports cleanse marked POST fields and secret-like settings with DEBUG on too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "coffee_payment.devices.reporting.AlwaysSafeExceptionReporterFilter"

# --- Logging: everything to stdout/stderr (12-factor; gunicorn and Kubernetes collect it) ------------------------
LOG_LEVEL = parse_choice(
    _env, "LOG_LEVEL", default="info", choices=("debug", "info", "warning", "error", "critical")
).upper()
# LOG_FORMAT=plain|json; every line carries the request id (coffee_payment/monitoring/logformat.py).
LOG_FORMAT = _log_format(os.environ)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"app": {"()": "coffee_payment.monitoring.logformat.app_formatter", "fmt": LOG_FORMAT}},
    "filters": {
        "request_id": {"()": "coffee_payment.monitoring.requestid.RequestIdFilter"},
        "suspicious": {"()": "coffee_payment.monitoring.logformat.SuspiciousRequestFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "app", "filters": ["request_id"]},
        # A handler filter: a logger's own filters would not see its children's (django.security.DisallowedHost).
        "security": {"class": "logging.StreamHandler", "formatter": "app", "filters": ["request_id", "suspicious"]},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "coffee_payment": {"level": LOG_LEVEL, "handlers": ["console"], "propagate": False},
        "django.request": {"level": "ERROR", "handlers": ["console"], "propagate": False},
        # Bad requests any client can send: one WARNING line each, no traceback (SuspiciousRequestFilter).
        "django.security": {"level": "WARNING", "handlers": ["security"], "propagate": False},
    },
}

# --- HTTPS hardening (on by default when BASE_URL is https) ---------------------------------------------------
_HTTPS = BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = parse_bool(_env, "SECURE_COOKIES", default=_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = parse_int(_env, "SECURE_HSTS_SECONDS", default=0, minimum=0, maximum=10 * 365 * 86400)
SECURE_SSL_REDIRECT = parse_bool(_env, "SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^livez$", r"^readyz$"]

# --- Admin: URL prefix, session lifetime, login throttling (django-axes) ------------------------------------------
# Only the admin uses sessions and logins (the customer paths have neither).
ADMIN_URL_PREFIX = admin_url_prefix(os.environ.get("ADMIN_URL_PREFIX"), warn=fallback)
SESSION_COOKIE_AGE = parse_int(_env, "ADMIN_SESSION_AGE_S", default=8 * 3600, minimum=60, maximum=30 * 86400)
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# The failure-limit-th wrong password locks (429) that username and that address; every later login of either is
# refused unchecked (429) until the cool-off has passed since the last attempt. Default: at most 5 passwords tried.
AXES_FAILURE_LIMIT = parse_int(_env, "ADMIN_LOGIN_FAILURE_LIMIT", default=5, minimum=1, maximum=_COUNT_MAX)
AXES_COOLOFF_TIME = timedelta(
    minutes=parse_number(_env, "ADMIN_LOGIN_COOLOFF_MINUTES", default=15.0, minimum=0.1, maximum=7 * 24 * 60.0)
)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
# The address uvicorn resolved (X-Forwarded-For only from GUNICORN_FORWARDED_ALLOW_IPS), never a raw header.
AXES_CLIENT_IP_CALLABLE = "coffee_payment.serving.client_address.client_ip"
