"""``EncryptedTextField``: a model field whose column holds a Fernet token and whose Python value is the plaintext."""

from __future__ import annotations

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from coffee_payment.devices import encryption


class _SecretAttribute(DeferredAttribute):
    """Wraps every str assigned to the field (a form's value, seed data) in SecretStr, so its repr is masked even
    before it was saved and read back."""

    def __set__(self, instance, value) -> None:
        if isinstance(value, str) and not isinstance(value, encryption.SecretStr):
            value = encryption.SecretStr(value)
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """Text encrypted at rest (coffee_payment/devices/encryption.py). The attribute is always a
    :class:`~encryption.SecretStr` (masked ``repr``), read or assigned; writes store a fresh token (Fernet is
    randomised: equal secrets give different tokens).

    The database cannot compare plaintexts, so every lookup except ``isnull`` is refused (``FieldError``) — a filter
    such as ``secret__startswith`` would otherwise silently compare against ciphertext. Serialisation
    (``dumpdata``) writes the token, never the plaintext; ``loaddata`` turns the token back into the secret.
    """

    description = "Text encrypted at rest (Fernet)"
    descriptor_class = _SecretAttribute

    def get_lookup(self, lookup_name: str):
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, name: str):
        return None

    def from_db_value(self, value, expression, connection):
        return None if value is None else encryption.decrypt(value)

    def to_python(self, value):
        # A token arrives here from loaddata; anything else is a plaintext typed in a form or code.
        if isinstance(value, str) and not isinstance(value, encryption.SecretStr) and encryption.is_token(value):
            return encryption.decrypt(value)
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encryption.encrypt(value)

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else encryption.encrypt(value)
