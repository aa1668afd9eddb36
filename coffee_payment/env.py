"""The one env dialect of this project, for Django settings and gunicorn knobs alike (docs/serving.md §7).

* integers: base-10 ASCII digits only — no sign, ``_``, whitespace, quotes, ``0x``, exponent — in a range;
* numbers (seconds, minutes): a plain decimal (``2``, ``0.5``), finite, in a range; returned as ``float``;
* booleans: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``, any case, nothing else;
* choices: one of a fixed set of words, any case; returned in lower case.

Unset → the default, silently. Anything else that does not parse → the default and exactly one warning,
``NAME='raw' <problem>; using <default>``, through ``warn`` (stderr by default; gunicorn's error log and
Kubernetes collect it). Nothing here raises on input or imports Django: ``gunicorn.conf.py`` uses it before
Django is set up. gunicorn's own parsers are laxer (``int(x, 0)``: ``0x10`` → 16), which is why every
``GUNICORN_*`` knob goes through here (``coffee_payment/serving/env.py``). django-environ stays for what it does
well: ``DATABASE_URL`` and comma-separated lists (``settings.py``).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping

Warn = Callable[[str], None]

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def warn_stderr(message: str) -> None:
    """Write one ``WARNING: <message>`` line to stderr."""
    sys.stderr.write(f"WARNING: {message}\n")
    sys.stderr.flush()


def fallback(name: str, raw: str, problem: str, used: object, warn: Warn = warn_stderr) -> None:
    """The one warning format: ``NAME='raw' <problem>; using <used>``."""
    warn(f"{name}={raw!r} {problem}; using {used}")


def _range_text(minimum: float, maximum: float | None) -> str:
    return f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"


def parse_int(
    environ: Mapping[str, str],
    name: str,
    *,
    default: int,
    minimum: int,
    maximum: int | None = None,
    warn: Warn = warn_stderr,
) -> int:
    """``name`` as a base-10 integer in ``[minimum, maximum]`` (no upper bound when ``maximum`` is None)."""
    raw = environ.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        fallback(name, raw, "is not a base-10 integer", default, warn)
        return default
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        fallback(name, raw, f"is out of range {_range_text(minimum, maximum)}", default, warn)
        return default
    return value


def parse_number(
    environ: Mapping[str, str],
    name: str,
    *,
    default: float,
    minimum: float,
    maximum: float | None = None,
    warn: Warn = warn_stderr,
) -> float:
    """``name`` as a plain decimal number (``2``, ``0.5``) in ``[minimum, maximum]``; a ``float``."""
    raw = environ.get(name)
    if raw is None:
        return default
    if not _DECIMAL.fullmatch(raw):
        fallback(name, raw, "is not a decimal number", default, warn)
        return default
    value = float(raw)
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        fallback(name, raw, f"is out of range {_range_text(minimum, maximum)}", default, warn)
        return default
    return value


def parse_bool(environ: Mapping[str, str], name: str, *, default: bool, warn: Warn = warn_stderr) -> bool:
    """``name`` as a boolean: ``1/true/yes/on`` or ``0/false/no/off``, any case."""
    raw = environ.get(name)
    if raw is None:
        return default
    word = raw.lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    fallback(name, raw, "is not a boolean (1/0, true/false, yes/no, on/off)", int(default), warn)
    return default


def parse_choice(
    environ: Mapping[str, str], name: str, *, default: str, choices: tuple[str, ...], warn: Warn = warn_stderr
) -> str:
    """``name`` as one of ``choices`` (lower-case words; the value is matched in any case)."""
    raw = environ.get(name)
    if raw is None:
        return default
    if raw.lower() in choices:
        return raw.lower()
    fallback(name, raw, f"is not one of {', '.join(choices)}", default, warn)
    return default
