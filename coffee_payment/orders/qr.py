"""Validation of the QR link parameters of ``GET /v1/pay`` (docs/domain.md §1)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _

# Patterns are used with fullmatch (``$`` would accept a trailing newline) and ASCII classes only.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The machine's order id must work as one URL path segment (docs/domain.md §1): RFC 3986 ``pchar`` without ``%`` (an
# escape would make two spellings of one id), so no ``/``, ``?``, ``#``, spaces or control characters; ≤ 255 chars.
_MACHINE_UUID_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]{1,255}")
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


def _refuse_repeated(query: Mapping[str, str]) -> None:
    """A parameter given twice makes the link ambiguous (which value is meant?): refuse it, naming it."""
    getlist = getattr(query, "getlist", None)
    if getlist is None:  # a plain dict cannot hold a repeated key
        return
    for name in query:
        if len(getlist(name)) > 1:
            raise QrError(_("the parameter “%(name)s” is given more than once") % {"name": name})


def parse_qr(query: Mapping[str, str]) -> QrParams:
    """Validate the query of a QR link (a ``QueryDict`` or a plain mapping). Raises QrError naming the first bad
    parameter, in the active language. ``ts``/``random``/``salt`` belong to an unknown signature scheme: accepted
    and stored, not verified."""
    _refuse_repeated(query)

    def required(name: str) -> str:
        value = (query.get(name) or "").strip()
        if not value:
            raise QrError(_("the parameter “%(name)s” is missing") % {"name": name})
        return value

    def invalid(name: str, rule: str) -> QrError:
        return QrError(_("the parameter “%(name)s” is not valid: %(rule)s") % {"name": name, "rule": rule})

    device_uuid = required("deviceUuid")
    if not _ID_RE.fullmatch(device_uuid):
        raise invalid("deviceUuid", _("1–64 Latin letters, digits, “-” or “_”"))
    drink_no = required("drinkNo")
    if not _ID_RE.fullmatch(drink_no):
        raise invalid("drinkNo", _("1–64 Latin letters, digits, “-” or “_”"))
    drink_name = required("drinkName")
    if len(drink_name) > 200 or not drink_name.isprintable():
        raise invalid("drinkName", _("printable text of at most 200 characters"))
    size_text = required("size")
    if size_text not in ("0", "1", "2"):
        raise invalid("size", _("0, 1 or 2"))
    machine_uuid = required("uuid")
    if not _MACHINE_UUID_RE.fullmatch(machine_uuid) or machine_uuid in (".", ".."):  # dot segments too
        raise invalid("uuid", _("1–255 characters usable in a web address (no “/”, “?”, “#”, “%” or spaces)"))
    extras = {}
    for name, limit in SIGNATURE_LIMITS.items():
        value = query.get(name) or ""
        if value and not re.fullmatch(rf"[\x21-\x7e]{{1,{limit}}}", value):
            raise invalid(name, _("at most %(limit)d printable characters without spaces") % {"limit": limit})
        extras[name] = value
    return QrParams(device_uuid, drink_no, drink_name, int(size_text), machine_uuid, **extras)
