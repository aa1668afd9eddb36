"""Request ids: one per request, from a trusted proxy's ``X-Request-ID`` or generated, kept in a ``ContextVar``.

The id follows the request into every log line (:class:`RequestIdFilter` on the handlers), into the response
(``X-Request-ID``) and onto outbound calls (``coffee_payment/monitoring/outbound.py``). asgiref's
``sync_to_async`` copies the context into the thread that runs a sync view, so sync code sees it too.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar

HEADER = "X-Request-ID"
HEADER_BYTES = b"x-request-id"
# What we accept from a proxy: ingress-nginx sends 32 hex digits, others UUIDs; anything else is replaced.
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
NO_REQUEST = "-"

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)


def new_request_id() -> str:
    """A fresh id: 32 lowercase hex digits (128 random bits), the format ingress-nginx uses.

    ``os.urandom(16).hex()``: same randomness as ``uuid4().hex``, several times cheaper per request.
    """
    return os.urandom(16).hex()


def accept_request_id(raw: bytes | None) -> str | None:
    """The proxy's id if it is 1–128 characters of ``[A-Za-z0-9._:-]`` (safe in logs and headers), else None."""
    if not raw:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _VALID.fullmatch(text) else None


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request (management commands, boot)."""
    value = REQUEST_ID.get()
    return None if value == NO_REQUEST else value


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) to every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record."""
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True
