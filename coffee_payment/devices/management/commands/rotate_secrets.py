"""``manage.py rotate_secrets``: re-encrypt every provider secret with the first key of FIELD_ENCRYPTION_KEYS.

Step 2 of a key rotation (docs/operations.md, 'Encryption keys'): after the new key was put first and the old key
kept after it, this rewrites each stored token with the new key, so the old key can then be removed. Reading
decrypts with any configured key, saving encrypts with the first one. Safe to re-run; one short transaction per row.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from coffee_payment.devices import encryption
from coffee_payment.devices.models import ProviderAccount


class Command(BaseCommand):
    help = "Re-encrypt every provider secret with the first key of FIELD_ENCRYPTION_KEYS (after a key rotation)."

    def handle(self, *args, **options) -> None:
        rotated = 0
        for pk in ProviderAccount.objects.order_by("pk").values_list("pk", flat=True):
            try:
                with transaction.atomic():
                    account = ProviderAccount.objects.select_for_update().filter(pk=pk).first()
                    if account is not None:
                        account.save(update_fields=["secret"])
                        rotated += 1
            except (encryption.SecretUndecryptable, encryption.EncryptionKeyMissing) as exc:
                raise CommandError(f"provider account {pk}: {exc}") from None
        self.stdout.write(f"Re-encrypted {rotated} provider secret(s) with the first key of {encryption.ENV_VAR}.")
