"""System checks for configuration mistakes settings parsing cannot catch: one function per check, each with a
stable id (``coffee_payment.E00x/W00x``) and a one-line hint; the ``deploy=True`` ones run with ``check --deploy``."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from coffee_payment.env import parse_int


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@register(Tags.compatibility)
def check_urls(app_configs=None, **kwargs) -> list:
    """BASE_URL and the service URLs must be absolute http(s) URLs."""
    problems = []
    for name in ("BASE_URL", "TMETR_API_URL", "YOOKASSA_API_URL", "TBANK_API_URL"):
        value = getattr(settings, name)
        if not _absolute_http(value):
            problems.append(
                Error(
                    f"{name}={value!r} is not an absolute http(s) URL.",
                    hint=f"Set {name} like https://host/...",
                    id="coffee_payment.E001",
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_tmetr_token(app_configs=None, **kwargs) -> list:
    """``check --deploy``: a Tmetr token is set (an empty one gets every Tmetr call refused)."""
    if settings.TMETR_TOKEN:
        return []
    return [
        Error(
            "TMETR_TOKEN is empty: every Tmetr call will be refused.",
            hint="Set TMETR_TOKEN to the Tmetr JWT.",
            id="coffee_payment.E002",
        )
    ]


@register(Tags.security, deploy=True)
def check_real_services(app_configs=None, **kwargs) -> list:
    """``check --deploy``: Tmetr and the providers are the real services (not the sandbox), over HTTPS: the
    guard against shipping with sandbox URLs."""
    problems = []
    for name in ("TMETR_API_URL", "YOOKASSA_API_URL", "TBANK_API_URL"):
        value = getattr(settings, name)
        if value.startswith(settings.SANDBOX_URL):
            problems.append(
                Warning(
                    f"{name} points at the sandbox ({value}).",
                    hint=f"Set {name} to the real service for production.",
                    id="coffee_payment.W001",
                )
            )
        elif urlsplit(value).scheme != "https":
            problems.append(
                Error(
                    f"{name} is not HTTPS.", hint="Provider and Tmetr traffic must use TLS.", id="coffee_payment.E003"
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_base_url_https(app_configs=None, **kwargs) -> list:
    """``check --deploy``: our public origin is HTTPS (the providers' return and notification URLs)."""
    if urlsplit(settings.BASE_URL).scheme == "https":
        return []
    return [
        Warning(
            "BASE_URL is not HTTPS: providers require HTTPS return and notification URLs.",
            hint="Set BASE_URL to the public https:// origin.",
            id="coffee_payment.W002",
        )
    ]


@register(Tags.security, deploy=True)
def check_csrf_trusted_origin(app_configs=None, **kwargs) -> list:
    """``check --deploy``: the public origin is a CSRF-trusted origin (admin logins over HTTPS need it)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.BASE_URL))
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return []
    return [
        Warning(
            f"CSRF_TRUSTED_ORIGINS lacks {origin} (the origin of BASE_URL): admin logins through it fail Django's "
            "CSRF origin check when a proxy in front changes the scheme or host.",
            hint=f"Add {origin} to CSRF_TRUSTED_ORIGINS.",
            id="coffee_payment.W003",
        )
    ]


@register(Tags.compatibility)
def check_timeouts(app_configs=None, **kwargs) -> list:
    """Every outbound budget must fit inside the gunicorn worker timeout (docs/domain.md §5 rule 8)."""
    problems = []
    # The same parser gunicorn.conf.py uses; its warning, if any, is printed there, not twice.
    worker_timeout = parse_int(
        os.environ, "GUNICORN_TIMEOUT", default=30, minimum=1, maximum=3600, warn=lambda _message: None
    )
    budgets = {
        "provider": settings.PROVIDER_CONNECT_TIMEOUT_S + settings.PROVIDER_READ_TIMEOUT_S,
        "Tmetr": settings.TMETR_CONNECT_TIMEOUT_S + settings.TMETR_READ_TIMEOUT_S,
    }
    for name, budget in budgets.items():
        if budget >= worker_timeout:
            problems.append(
                Error(
                    f"{name} connect+read timeout ({budget:g} s) is not below GUNICORN_TIMEOUT ({worker_timeout} s).",
                    hint="Lower the outbound timeouts or raise GUNICORN_TIMEOUT.",
                    id="coffee_payment.E004",
                )
            )
    return problems


@register(Tags.compatibility)
def check_tmetr_size_words(app_configs=None, **kwargs) -> list:
    """TMETR_SIZE_WORDS names the three drink sizes (0, 1, 2) in Tmetr's words."""
    if len(settings.TMETR_SIZE_WORDS) == 3:
        return []
    return [
        Error(
            "TMETR_SIZE_WORDS must list exactly three words (small, medium, big).",
            hint="e.g. TMETR_SIZE_WORDS=small,medium,big",
            id="coffee_payment.E005",
        )
    ]


@register(Tags.compatibility)
def check_allowed_hosts(app_configs=None, **kwargs) -> list:
    """With DEBUG off, ALLOWED_HOSTS names at least one host (else Django answers 400 to everything)."""
    if settings.DEBUG or settings.ALLOWED_HOSTS:
        return []
    return [
        Error(
            "ALLOWED_HOSTS is empty: every request except the probes gets 400.",
            hint="Set ALLOWED_HOSTS to the public host name(s).",
            id="coffee_payment.E006",
        )
    ]


@register(Tags.security, deploy=True)
def check_test_faults(app_configs=None, **kwargs) -> list:
    """The fault hooks of the test suite (``SERVING_TEST_FAULTS``) kill workers on purpose: never in production."""
    if not settings.SERVING_TEST_FAULTS:
        return []
    return [
        Error(
            f"SERVING_TEST_FAULTS={','.join(settings.SERVING_TEST_FAULTS)} is set: test fault hooks are active.",
            hint="Unset SERVING_TEST_FAULTS; it exists for the test suite and drills only.",
            id="coffee_payment.E011",
        )
    ]


def _drain_budget() -> float:
    """The worker's drain budget in seconds, from GUNICORN_TIMEOUT/GUNICORN_GRACEFUL_TIMEOUT as gunicorn.conf.py
    resolves them (coffee_payment/serving/worker.py ``drain_timeout``)."""
    from coffee_payment.serving.worker import drain_timeout

    quiet = {"minimum": 1, "maximum": 3600, "warn": lambda _message: None}
    timeout = parse_int(os.environ, "GUNICORN_TIMEOUT", default=30, **quiet)
    graceful = parse_int(os.environ, "GUNICORN_GRACEFUL_TIMEOUT", default=timeout, **quiet)
    return drain_timeout(timeout, graceful)


@register(Tags.compatibility, deploy=True)
def check_database_bounds(app_configs=None, **kwargs) -> list:
    """Every database wait must end inside the worker's drain budget, or a recycle/stop cuts the request off.

    Deploy-time only (``manage.py check --deploy``): drills and load runs use short drains on purpose, and the
    migrate Job may raise DB_STATEMENT_TIMEOUT_S for a long migration.
    """
    drain = _drain_budget()
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        bounds = {"SQLITE_BUSY_TIMEOUT_S": settings.DATABASES["default"]["OPTIONS"]["timeout"]}
    else:
        bounds = {
            "DB_STATEMENT_TIMEOUT_S": settings.DB_STATEMENT_TIMEOUT_S,
            "DB_LOCK_TIMEOUT_S": settings.DB_LOCK_TIMEOUT_S,
            "DB_POOL_TIMEOUT_S": settings.DATABASES["default"]["OPTIONS"]["pool"]["timeout"],
        }
    return [
        Error(
            f"{name}={value:g} s is not below the worker's drain budget ({drain:g} s).",
            hint=f"Lower {name} or raise GUNICORN_TIMEOUT/GUNICORN_GRACEFUL_TIMEOUT.",
            id="coffee_payment.E010",
        )
        for name, value in bounds.items()
        if value >= drain
    ]
