"""Provider secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, ``cryptography``).

Keys come from ``FIELD_ENCRYPTION_KEYS``: comma-separated Fernet keys (32 random bytes, url-safe base64, 44
characters; ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
The first key encrypts; every key decrypts (``MultiFernet``), which is how a key is rotated: put the new key first,
keep the old one after it, run ``manage.py rotate_secrets``, then drop the old key (docs/operations.md).

With ``DEBUG`` on and no key, a fixed development key is used so ``runserver`` works out of the box; local prod mode
(``invoke serve --prod``) gets a generated key from ``var/field_encryption_key`` (devtools/stack.py). With
``DEBUG`` off and no key, reading or writing a secret raises :class:`EncryptionKeyMissing` and
``check --deploy`` fails (``coffee_payment.E007``).

No message raised here quotes a key, a token or a plaintext.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENV_VAR = "FIELD_ENCRYPTION_KEYS"
# Development only (DEBUG on, no key set): derived from a public string, so it protects nothing.
DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"coffee-payment development-only field key").digest()).decode()


class EncryptionKeyMissing(ImproperlyConfigured):
    """No usable key in FIELD_ENCRYPTION_KEYS while DEBUG is off."""


class SecretUndecryptable(ImproperlyConfigured):
    """A stored token matches no key in FIELD_ENCRYPTION_KEYS (a key was removed before ``rotate_secrets`` ran)."""


class SecretStr(str):
    """A decrypted secret: a plain ``str`` for every use (``%s``, f-strings, hashing, HTTP auth), but its ``repr``
    is masked, so a dataclass repr, a ``%r`` log argument or a debug page's local variables never show it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<secret>'"


def key_problems(keys: list[str]) -> list[str]:
    """Describe each malformed key by its position (1-based), never by its value. Empty list = all keys usable."""
    problems = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.strip().encode())
        except (ValueError, TypeError):
            problems.append(f"key #{position} of {ENV_VAR} is not a Fernet key (44 url-safe base64 characters)")
    return problems


def configured_keys() -> list[str]:
    """The keys in force: ``settings.FIELD_ENCRYPTION_KEYS`` (blank entries dropped), or the development key when
    DEBUG is on and none is set."""
    keys = [key.strip() for key in getattr(settings, ENV_VAR, []) if key.strip()]
    if not keys and settings.DEBUG:
        return [DEV_KEY]
    return keys


@cache
def _cipher_for(keys: tuple[str, ...]) -> MultiFernet:
    problems = key_problems(list(keys))
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
    return MultiFernet([Fernet(key.encode()) for key in keys])


def cipher() -> MultiFernet:
    """The MultiFernet for the configured keys. Raises EncryptionKeyMissing (no key, DEBUG off) or
    ImproperlyConfigured (a malformed key)."""
    keys = configured_keys()
    if not keys:
        raise EncryptionKeyMissing(
            f"{ENV_VAR} is not set: provider secrets cannot be encrypted or decrypted "
            "(set it to a Fernet key; see docs/operations.md, 'Encryption keys')."
        )
    return _cipher_for(tuple(keys))


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first key; returns the Fernet token (url-safe base64 text)."""
    return cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> SecretStr:
    """Decrypt a token with any configured key. Raises SecretUndecryptable when no key matches (or the text is not
    a token at all); the message names neither the token nor the plaintext."""
    try:
        return SecretStr(cipher().decrypt(token.encode()).decode())
    except InvalidToken:
        raise SecretUndecryptable(
            f"a stored provider secret cannot be decrypted with any key in {ENV_VAR} "
            "(was a key removed before `manage.py rotate_secrets` ran?)"
        ) from None


def is_token(value: str) -> bool:
    """True when ``value`` decrypts with a configured key (a plaintext secret never does: the token is MACed)."""
    try:
        decrypt(value)
    except SecretUndecryptable:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the first key (it may have been made with any configured key)."""
    try:
        return cipher().rotate(token.encode()).decode("ascii")
    except InvalidToken:
        raise SecretUndecryptable(f"a stored provider secret matches no key in {ENV_VAR}") from None
