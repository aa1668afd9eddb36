"""Every environment variable the code reads is listed in .env.example and documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    "coffee_payment/settings.py",
    "coffee_payment/serving/env.py",
    "coffee_payment/serving/probes.py",
    "coffee_payment/serving/metrics_hooks.py",
    "coffee_payment/monitoring/logformat.py",
]
_READ = re.compile(
    r'(?:_number|_flag|env\.(?:str|bool|list|int|float|db_url)|environ\.get|_env\.get|parse_\w+)\(\s*(?:os\.environ,\s*|environ,\s*|_env,\s*)?"([A-Z][A-Z0-9_]+)"'
)


def variables() -> set[str]:
    names = set()
    for source in SOURCES:
        text = (ROOT / source).read_text()
        names |= set(_READ.findall(text)) | set(re.findall(r'"((?:GUNICORN|SERVING)_[A-Z0-9_]+)"', text))
    names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]{2,})", (ROOT / "entrypoint.sh").read_text()))
    # Read only to warn about them; GUNICORN_PID is set by gunicorn itself in a USR2-re-executed master.
    return names - {"GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "GUNICORN_PID"}


def test_variables_are_found():
    assert {"DATABASE_URL", "SECRET_KEY", "GUNICORN_WORKERS", "FAST_TRACK_LIMIT_S", "RUN_MODE"} <= variables()


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_variable_is_documented(document):
    text = (ROOT / document).read_text()
    missing = sorted(name for name in variables() if not re.search(rf"\b{name}\b", text))
    assert missing == [], f"{document} lacks {missing}"
