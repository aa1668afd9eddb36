"""The prometheus_client multiprocess directory, prepared in the gunicorn master before anything imports
prometheus_client (it picks multiprocess mode at import time, from ``PROMETHEUS_MULTIPROC_DIR``).

Standard library only, on purpose: importing prometheus_client here would fix its mode before the variable is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

from coffee_payment.env import fallback

ENV = "PROMETHEUS_MULTIPROC_DIR"


def unusable(configured: str) -> str | None:
    """Why ``configured`` cannot hold the metric files (not absolute; cannot be made a directory or written in),
    or None when it can; a missing directory is created. The write is real: ``os.access`` says yes to root on
    ``/proc`` or a read-only mount."""
    path = Path(configured)
    if not path.is_absolute():
        return "is not an absolute path"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"is not a usable directory ({exc.strerror})"
    return None


def drop_if_unusable(environ: MutableMapping[str, str]) -> None:
    """Outside a gunicorn master (``manage.py``, runserver, a bare import of the ASGI app), before prometheus_client
    is imported: a set but unusable ``environ[ENV]`` (empty, relative, not writable) is removed with a warning naming
    the variable, so metrics stay in this process instead of crashing at the first metric write or writing
    ``*.db`` files into the working directory. Under gunicorn the master has already made it usable
    (:func:`prepare_dir`), so this finds nothing to do."""
    configured = environ.get(ENV)
    if configured is None:
        return
    problem = unusable(configured) if configured else "is empty"
    if problem is not None:
        del environ[ENV]
        fallback(ENV, configured, problem, "in-process metrics (this process only)")


def prepare_dir(environ: MutableMapping[str, str], *, shm: str = "/dev/shm") -> tuple[Path, bool]:
    """Make ``environ[ENV]`` an existing, empty directory; returns (path, created_here).

    Unset → a fresh directory on tmpfs (``shm``; the system temp dir if ``shm`` is not writable) that the caller
    removes at exit. Set → created if missing and emptied of ``*.db`` files from a previous run; a relative path or
    one that cannot be made a directory (a file, no permission) → the fresh directory and a warning naming the
    variable. Must run in the master before any worker forks (and before prometheus_client is imported, so it picks
    multiprocess mode).
    """
    configured = environ.get(ENV)
    problem = unusable(configured) if configured else None
    if configured and problem is None:
        path = Path(configured)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path, False
    bad = (configured, problem) if configured else None
    parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="coffee-metrics-", dir=parent))
    environ[ENV] = str(path)
    if bad is not None:
        fallback(ENV, bad[0], bad[1], f"{path} (a fresh directory, removed at exit)")
    return path, True


def remove_dir(path: Path) -> None:
    """Remove a directory made by :func:`prepare_dir` (at master exit)."""
    shutil.rmtree(path, ignore_errors=True)
