"""The provider registry: every provider the generic code (services, notifications, inbox, refunds, webhooks)
reaches, by the name stored in ``provider`` columns. Each implements ``base.PaymentProvider``; a new provider is
one module plus one line here: the ``provider`` columns take their choices from here (:func:`provider_choices`), and
each provider's webhook URL is routed from its ``webhook_path`` (``coffee_payment/urls.py``)."""

from __future__ import annotations

from coffee_payment.payments.providers.base import PaymentProvider, ProviderClient, ProviderMisconfigured
from coffee_payment.payments.providers.tbank import TBank
from coffee_payment.payments.providers.yookassa import YooKassa

PROVIDERS: dict[str, PaymentProvider] = {
    "yookassa": YooKassa(),
    "tbank": TBank(),
}


def provider_choices() -> list[tuple[str, str]]:
    """``[(name, label), ...]`` of the registered providers: the ``choices`` of every ``provider`` column (Device
    ``payment_scenario``, ProviderAccount, PaymentAttempt, Notification). A callable, so the migrations store this
    function's path rather than the list, and a new provider needs no migration; the admin's forms and
    ``full_clean`` validate against the registry as it is when they run."""
    return [(name, provider.label) for name, provider in PROVIDERS.items()]


def get_provider(name: str) -> PaymentProvider:
    """The registered provider called ``name``. Raises ProviderMisconfigured for an unknown name."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ProviderMisconfigured(f"unknown provider {name!r}") from None


def provider_client(provider: str, *, account_id: str, secret: str) -> ProviderClient:
    """Client for ``provider`` with one merchant's credentials; must be called on the running event loop. Raises
    ProviderMisconfigured for an unknown provider or empty credentials."""
    if not account_id or not secret:
        raise ProviderMisconfigured(f"{provider} credentials are empty")
    return get_provider(provider).connect(account_id=account_id, secret=secret)
