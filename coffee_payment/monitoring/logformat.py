"""Log formats: ``LOG_FORMAT=plain`` (default) or ``json`` (python-json-logger), for the access log and app logs.

Both carry the request id (``RequestIdFilter``). Times are UTC, ISO 8601 with milliseconds.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping

from pythonjsonlogger.json import JsonFormatter

from coffee_payment.monitoring.requestid import RequestIdFilter

FORMATS = ("plain", "json")
ACCESS_LOGGER = "coffee_payment.access"
# Every access line: time, method, path (no query), status, duration, bytes, client IP, request id, worker pid.
ACCESS_FIELDS = ("asctime", "method", "path", "status", "duration_ms", "bytes", "client_ip", "request_id", "process")
_ACCESS_PLAIN = (
    "%(asctime)s %(method)s %(path)s %(status)s %(duration_ms).1fms %(bytes)sB "
    "client=%(client_ip)s request_id=%(request_id)s pid=%(process)d"
)
_APP_PLAIN = "%(asctime)s %(levelname)s [%(process)d] %(name)s request_id=%(request_id)s: %(message)s"
_APP_JSON = ("asctime", "levelname", "process", "name", "request_id", "message")
_DATEFMT = "%Y-%m-%dT%H:%M:%S"


class _UtcMillis:
    """Mixin: ``asctime`` as ``2026-12-01T04:50:00.123Z``."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging API
        return f"{time.strftime(_DATEFMT, self.converter(record.created))}.{int(record.msecs):03d}Z"


class PlainFormatter(_UtcMillis, logging.Formatter):
    """Text lines."""


class JsonLinesFormatter(_UtcMillis, JsonFormatter):
    """One JSON object per line (python-json-logger), ``asctime`` renamed ``time``, ``process`` ``worker_pid``."""


class SuspiciousRequestFilter(logging.Filter):
    """``django.security.*`` records — a Host outside ALLOWED_HOSTS, a malformed multipart body, a CSRF failure —
    as one WARNING line without the traceback. Any client (every internet scanner) sends them at will, and Django
    logs most at ERROR with ``exc_info``: many lines each, on a level that pages someone. The message names the
    problem (e.g. ``Invalid HTTP_HOST header: 'evil.example'``); the client got its 400/403."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record."""
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def log_format(environ: Mapping[str, str], *, warn=None) -> str:
    """``LOG_FORMAT`` (plain|json, case-insensitive); anything else → plain with one warning naming the variable."""
    raw = environ.get("LOG_FORMAT")
    if raw is None or raw.strip().lower() in FORMATS:
        return (raw or "plain").strip().lower()
    message = f"WARNING: LOG_FORMAT={raw!r} is not one of plain, json; using plain\n"
    (warn or sys.stderr.write)(message)
    return "plain"


def access_formatter(fmt: str) -> logging.Formatter:
    """The access-log formatter for ``fmt``."""
    if fmt == "json":
        return JsonLinesFormatter(
            list(ACCESS_FIELDS), rename_fields={"asctime": "time", "process": "worker_pid"}, json_ensure_ascii=False
        )
    return PlainFormatter(_ACCESS_PLAIN)


def app_formatter(fmt: str) -> logging.Formatter:
    """The formatter of application log lines (``settings.LOGGING``) for ``fmt``."""
    if fmt == "json":
        return JsonLinesFormatter(list(_APP_JSON), rename_fields={"asctime": "time", "process": "pid"})
    return PlainFormatter(_APP_PLAIN)


def access_logger(fmt: str, stream=None) -> logging.Logger:
    """The access logger, writing to stdout (``stream``) in ``fmt``; idempotent (replaces its handlers)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(access_formatter(fmt))
    handler.addFilter(RequestIdFilter())
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
