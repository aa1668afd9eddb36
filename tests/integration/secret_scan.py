"""The provider secrets of the demo merchant must appear in no response, log line or database file of the
integration suite (issue 11): the app holds them encrypted and never renders, logs or raises them."""

from __future__ import annotations

from pathlib import Path

from coffee_payment.sandbox import defaults

SECRETS = (defaults.YOOKASSA_SECRET_KEY, defaults.TBANK_PASSWORD)


def assert_no_secret(data: bytes | str, where: str) -> None:
    """AssertionError naming ``where`` (never the secret) when ``data`` holds a provider secret."""
    raw = data.encode(errors="replace") if isinstance(data, str) else data
    found = [n for n, secret in enumerate(SECRETS, start=1) if secret.encode() in raw]
    assert not found, f"provider secret #{found[0]} found in {where}"


def assert_no_secret_in_files(paths: list[Path]) -> None:
    """Scan whole files (server logs, the SQLite database and its WAL) byte for byte."""
    for path in paths:
        if path.exists():
            assert_no_secret(path.read_bytes(), str(path))
