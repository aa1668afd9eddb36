"""``ADMIN_URL_PREFIX``: where the admin is mounted (default ``admin`` → ``/admin/``).

Moving the admin off the well-known path keeps most credential-stuffing bots off the login form (it is no
substitute for the login throttling). A prefix must be URL path segments that no other route owns: not the
customer paths (``v1``, routed to the lean handler), the probes, ``static`` or ``_test``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

DEFAULT = "admin"
_SEGMENTS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]*(?:/[A-Za-z0-9][A-Za-z0-9._~-]*)*")
_TAKEN = {"v1", "health", "livez", "readyz", "static", "_test"}


def admin_url_prefix(raw: str | None, *, warn: Callable[[str, str, str, object], None]) -> str:
    """The admin's path prefix without slashes (``"ops/admin"`` for ``/ops/admin/``). Unset or empty → ``admin``;
    anything else invalid → ``admin`` and ``warn(name, raw, problem, used)``."""
    if raw is None or not raw.strip(" /"):
        return DEFAULT
    prefix = raw.strip(" /")
    if not _SEGMENTS.fullmatch(prefix):
        warn("ADMIN_URL_PREFIX", raw, "is not URL path segments (letters, digits, . _ ~ -, separated by /)", DEFAULT)
        return DEFAULT
    if prefix.split("/", 1)[0].lower() in _TAKEN:
        warn(
            "ADMIN_URL_PREFIX",
            raw,
            f"starts with a path the server already uses ({', '.join(sorted(_TAKEN))})",
            DEFAULT,
        )
        return DEFAULT
    return prefix
