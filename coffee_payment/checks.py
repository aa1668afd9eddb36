"""System checks for configuration mistakes settings parsing cannot catch (ids ``coffee_payment.E00x/W00x``)."""

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
def check_production(app_configs=None, **kwargs) -> list:
    """Deploy-time checks (``manage.py check --deploy``): real services over HTTPS, secrets present."""
    problems = []
    if not settings.TMETR_TOKEN:
        problems.append(
            Error(
                "TMETR_TOKEN is empty: every Tmetr call will be refused.",
                hint="Set TMETR_TOKEN to the Tmetr JWT.",
                id="coffee_payment.E002",
            )
        )
    sandbox = settings.SANDBOX_URL
    for name in ("TMETR_API_URL", "YOOKASSA_API_URL", "TBANK_API_URL"):
        value = getattr(settings, name)
        if value.startswith(sandbox):
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
    if urlsplit(settings.BASE_URL).scheme != "https":
        problems.append(
            Warning(
                "BASE_URL is not HTTPS: providers require HTTPS return and notification URLs.",
                hint="Set BASE_URL to the public https:// origin.",
                id="coffee_payment.W002",
            )
        )
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.BASE_URL))
    if origin not in settings.CSRF_TRUSTED_ORIGINS:
        problems.append(
            Warning(
                f"CSRF_TRUSTED_ORIGINS lacks {origin}: admin logins over HTTPS will fail.",
                hint=f"Add {origin} to CSRF_TRUSTED_ORIGINS.",
                id="coffee_payment.W003",
            )
        )
    return problems


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
    if not settings.DEBUG and not settings.ALLOWED_HOSTS:
        problems.append(
            Error(
                "ALLOWED_HOSTS is empty: every request except the probes gets 400.",
                hint="Set ALLOWED_HOSTS to the public host name(s).",
                id="coffee_payment.E006",
            )
        )
    if len(settings.TMETR_SIZE_WORDS) != 3:
        problems.append(
            Error(
                "TMETR_SIZE_WORDS must list exactly three words (small, medium, big).",
                hint="e.g. TMETR_SIZE_WORDS=small,medium,big",
                id="coffee_payment.E005",
            )
        )
    return problems


@register(Tags.security, deploy=True)
def check_test_faults(app_configs=None, **kwargs) -> list:
    """The fault hooks of the test suite (``SERVING_TEST_FAULTS``) kill workers on purpose: never in production."""
    if not settings.SERVING_TEST_FAULTS:
        return []
    return [
        Error(
            f"SERVING_TEST_FAULTS={','.join(settings.SERVING_TEST_FAULTS)} is set: test fault hooks are active.",
            hint="Unset SERVING_TEST_FAULTS; it exists for the test suite and drills only.",
            id="coffee_payment.E010",
        )
    ]
