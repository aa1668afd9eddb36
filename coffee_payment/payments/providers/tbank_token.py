"""TBank (Tinkoff) request/notification Token.

Source: TBank internet acquiring API v2, "Подпись запроса" (https://www.tbank.ru/kassa/dev/payments/#section/Podpis-zaprosa)
and docs/domain.md §4. The Token is *not* an HMAC: take the root-level scalar fields (excluding ``Token`` and every
nested object or array such as ``DATA``/``Data``/``Receipt``/``Shops``), add ``Password``, sort by key,
concatenate the values only (numbers as decimal text, booleans as ``true``/``false``), SHA-256, lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any


def _token_text(value: Any) -> str:
    if isinstance(value, bool):  # bool before int: True is an int in Python
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def tbank_token(fields: Mapping[str, Any], password: str) -> str:
    """Return the TBank Token (64 lowercase hex chars) for ``fields`` signed with the terminal ``password``.

    ``fields`` is the request or notification body as parsed JSON; nested dicts/lists and ``Token`` itself are
    skipped, ``None`` values are skipped (TBank omits absent fields rather than sending null).
    """
    pairs = {
        key: _token_text(value)
        for key, value in fields.items()
        if key != "Token" and value is not None and not isinstance(value, (dict, list, tuple))
    }
    pairs["Password"] = password
    joined = "".join(pairs[key] for key in sorted(pairs))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def tbank_token_valid(fields: Mapping[str, Any], password: str) -> bool:
    """True when ``fields["Token"]`` equals the Token computed over the other fields (constant-time compare)."""
    received = fields.get("Token")
    if not isinstance(received, str) or not received.isascii():  # compare_digest raises TypeError on non-ASCII str
        return False
    return hmac.compare_digest(received.lower(), tbank_token(fields, password))
