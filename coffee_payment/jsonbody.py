"""Strict JSON parsing for request bodies from the internet (customers' phones, provider notifications)."""

from __future__ import annotations

import json
from typing import Any


class BadJson(ValueError):
    """The body is not acceptable JSON; the message says why (safe to return in a 400)."""


def _check_strings(value: Any) -> None:
    """Reject NUL (PostgreSQL text cannot hold it) and lone surrogates (not encodable as UTF-8) anywhere in the
    document, keys included. Iterative: a deep document must not exhaust the Python stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise BadJson("strings must not contain NUL characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadJson("strings must be valid Unicode (no lone surrogates)") from exc


def parse_json(body: bytes) -> Any:
    """Parse a UTF-8 JSON body. Raises BadJson for invalid UTF-8, invalid or too deeply nested JSON, NaN/Infinity
    literals, NUL characters or lone surrogates in strings."""

    def no_constants(name: str) -> Any:
        raise BadJson(f"{name} is not valid JSON")

    try:
        data = json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError as exc:
        raise BadJson("body is not UTF-8") from exc
    except RecursionError as exc:
        raise BadJson("JSON is nested too deeply") from exc
    except ValueError as exc:
        if isinstance(exc, BadJson):
            raise
        raise BadJson(f"body is not JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else exc}") from exc
    _check_strings(data)
    return data
