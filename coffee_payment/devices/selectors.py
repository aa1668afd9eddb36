"""Reads of a merchant's provider accounts, shared by Pay, notifications and refunds (one account per merchant
and provider; reading one decrypts its secret, which raises ``encryption.SecretUndecryptable`` when no
configured key opens it)."""

from __future__ import annotations

from coffee_payment.devices.models import ProviderAccount


def merchant_account(merchant_id: int, provider: str) -> ProviderAccount | None:
    """The merchant's account at ``provider``; None when it has none."""
    return ProviderAccount.objects.filter(merchant_id=merchant_id, provider=provider).first()


def account_by_id(provider: str, account_id: str) -> ProviderAccount | None:
    """The account a notification names by the provider's own account id (TBank's TerminalKey); None if unknown."""
    return ProviderAccount.objects.filter(provider=provider, account_id=account_id).first()
