"""System checks for the provider-secret encryption keys (``coffee_payment.E007``, ``coffee_payment.E008``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

from coffee_payment.devices.encryption import ENV_VAR, configured_keys, key_problems


@register(Tags.security, deploy=True)
def check_encryption_key_present(app_configs=None, **kwargs) -> list:
    """``check --deploy``: with DEBUG off, FIELD_ENCRYPTION_KEYS must hold at least one key."""
    if settings.DEBUG or configured_keys():
        return []
    return [
        Error(
            f"{ENV_VAR} is not set: provider secrets cannot be stored or read.",
            hint=f"Set {ENV_VAR} to a Fernet key (docs/operations.md, 'Encryption keys').",
            id="coffee_payment.E007",
        )
    ]


@register(Tags.security)
def check_encryption_keys_valid(app_configs=None, **kwargs) -> list:
    """Every key in FIELD_ENCRYPTION_KEYS must be a Fernet key (reported by position, never by value)."""
    return [
        Error(
            f"{problem}.",
            hint="Generate one: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
            id="coffee_payment.E008",
        )
        for problem in key_problems(configured_keys())
    ]
