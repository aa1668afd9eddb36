"""Validation of the QR link parameters of ``GET /v1/pay`` (domain.md §1)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Patterns are used with fullmatch (``$`` would accept a trailing newline) and ASCII classes only.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MACHINE_UUID_RE = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces; "not a UUID; ≤ 255 chars"
# Longest accepted value of each signature parameter = its column's max_length on Order.
SIGNATURE_LIMITS = {"ts": 64, "random": 64, "salt": 128}


class QrError(ValueError):
    """A bad QR parameter; the message names it and is shown to the customer (400 page)."""


@dataclass(frozen=True)
class QrParams:
    """Validated QR parameters. ``size`` is 0/1/2 (small/medium/large)."""

    device_uuid: str
    drink_no: str
    drink_name: str
    size: int
    machine_uuid: str
    ts: str = ""
    random: str = ""
    salt: str = ""


def parse_qr(query: Mapping[str, str]) -> QrParams:
    """Validate the query of a QR link. Raises QrError naming the first bad parameter.
    ``ts``/``random``/``salt`` belong to an unknown signature scheme: accepted and stored, not verified."""

    def required(name: str) -> str:
        value = (query.get(name) or "").strip()
        if not value:
            raise QrError(f"missing parameter {name!r}")
        return value

    device_uuid = required("deviceUuid")
    if not _ID_RE.fullmatch(device_uuid):
        raise QrError("deviceUuid must be 1–64 letters, digits, '-' or '_'")
    drink_no = required("drinkNo")
    if not _ID_RE.fullmatch(drink_no):
        raise QrError("drinkNo must be 1–64 letters, digits, '-' or '_'")
    drink_name = required("drinkName")
    if len(drink_name) > 200 or not drink_name.isprintable():
        raise QrError("drinkName must be printable text of at most 200 characters")
    size_text = required("size")
    if size_text not in ("0", "1", "2"):
        raise QrError("size must be 0, 1 or 2")
    machine_uuid = required("uuid")
    if not _MACHINE_UUID_RE.fullmatch(machine_uuid):
        raise QrError("uuid must be 1–255 printable characters without spaces")
    extras = {}
    for name, limit in SIGNATURE_LIMITS.items():
        value = query.get(name) or ""
        if value and not re.fullmatch(rf"[\x21-\x7e]{{1,{limit}}}", value):
            raise QrError(f"{name} must be at most {limit} printable characters without spaces")
        extras[name] = value
    return QrParams(device_uuid, drink_no, drink_name, int(size_text), machine_uuid, **extras)
