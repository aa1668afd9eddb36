"""What the per-checkout caches of devtools share (``collectstatic`` output, the migrated database templates): the
start of their fingerprint and an exclusive file lock for concurrent starts (xdist workers, side-by-side drills)."""

from __future__ import annotations

import fcntl
import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout_digest() -> hashlib._Hash:
    """A sha256 already fed with what every cached artefact depends on: this interpreter's environment
    (``sys.prefix``: its packages' assets and migrations), ``uv.lock`` and ``coffee_payment/settings.py``; callers
    add their own inputs and take ``hexdigest()``."""
    digest = hashlib.sha256(sys.prefix.encode())
    for name in ("uv.lock", "coffee_payment/settings.py"):
        digest.update((ROOT / name).read_bytes())
    return digest


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its directory) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
