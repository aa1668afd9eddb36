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

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_dir(environ: MutableMapping[str, str], *, shm: str = "/dev/shm") -> tuple[Path, bool]:
    """Make ``environ[ENV]`` an existing, empty directory; returns (path, created_here).

    Unset → a fresh directory on tmpfs (``shm``; the system temp dir if ``shm`` is not writable) that the caller
    removes at exit. Set → created if missing and emptied of ``*.db`` files from a previous run. Must run in the
    master before any worker forks (and before prometheus_client is imported, so it picks multiprocess mode).
    """
    configured = environ.get(ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path, False
    parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="coffee-metrics-", dir=parent))
    environ[ENV] = str(path)
    return path, True


def remove_dir(path: Path) -> None:
    """Remove a directory made by :func:`prepare_dir` (at master exit)."""
    shutil.rmtree(path, ignore_errors=True)
