"""Provider clients, built per merchant account on the worker's shared HTTP client."""

from __future__ import annotations

from django.conf import settings

from coffee_payment.integrations.http import shared_client
from coffee_payment.payments.providers.base import ProviderMisconfigured
from coffee_payment.payments.providers.tbank import TBankClient
from coffee_payment.payments.providers.yookassa import YooKassaClient


def provider_client(provider: str, *, account_id: str, secret: str) -> YooKassaClient | TBankClient:
    """Client for ``provider`` (``yookassa``/``tbank``) with one merchant's credentials; must be called on the
    running event loop. Raises ProviderMisconfigured for an unknown provider or empty credentials."""
    if not account_id or not secret:
        raise ProviderMisconfigured(f"{provider} credentials are empty")
    timeouts = {
        "connect_timeout": settings.PROVIDER_CONNECT_TIMEOUT_S,
        "read_timeout": settings.PROVIDER_READ_TIMEOUT_S,
    }
    if provider == "yookassa":
        return YooKassaClient(
            shared_client(), base_url=settings.YOOKASSA_API_URL, shop_id=account_id, secret_key=secret, **timeouts
        )
    if provider == "tbank":
        return TBankClient(
            shared_client(), base_url=settings.TBANK_API_URL, terminal_key=account_id, password=secret, **timeouts
        )
    raise ProviderMisconfigured(f"unknown provider {provider!r}")
