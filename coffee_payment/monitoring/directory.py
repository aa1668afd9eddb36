"""The prometheus_client multiprocess directory, prepared in the gunicorn master before anything imports
prometheus_client (it picks multiprocess mode at import time, from ``PROMETHEUS_MULTIPROC_DIR``).

Standard library only, on purpose: importing prometheus_client here would fix its mode before the variable is set.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

from coffee_payment.env import fallback

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_dir(environ: MutableMapping[str, str], *, shm: str = "/dev/shm") -> tuple[Path, bool]:
    """Make ``environ[ENV]`` an existing, empty directory; returns (path, created_here).

    Unset → a fresh directory on tmpfs (``shm``; the system temp dir if ``shm`` is not writable) that the caller
    removes at exit. Set → created if missing and emptied of ``*.db`` files from a previous run; a relative path or
    one that cannot be made a directory (a file, no permission) → the fresh directory and a warning naming the
    variable. Must run in the master before any worker forks (and before prometheus_client is imported, so it picks
    multiprocess mode).
    """
    configured = environ.get(ENV)
    if configured:
        path = Path(configured)
        try:
            if not path.is_absolute():
                raise ValueError("is not an absolute path")
            path.mkdir(parents=True, exist_ok=True)
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable")
            for stale in path.glob("*.db"):
                stale.unlink(missing_ok=True)
            return path, False
        except (OSError, ValueError) as exc:
            # A bad value must not stop gunicorn from reading its config file: a fresh directory instead, below.
            problem = str(exc) if isinstance(exc, ValueError) else f"is not a usable directory ({exc.strerror})"
            bad = (configured, problem)
    else:
        bad = None
    parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="coffee-metrics-", dir=parent))
    environ[ENV] = str(path)
    if bad is not None:
        fallback(ENV, bad[0], bad[1], f"{path} (a fresh directory, removed at exit)")
    return path, True


def remove_dir(path: Path) -> None:
    """Remove a directory made by :func:`prepare_dir` (at master exit)."""
    shutil.rmtree(path, ignore_errors=True)
