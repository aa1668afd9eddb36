"""Staggered recycling: a worker that reached ``max_requests`` starts draining only while every other worker accepts.

Why: gunicorn's jitter spreads the limits but does not prevent two workers from reaching theirs in the same
second; both then stop accepting and the server has none accepting until a replacement boots (measured: ~4 s,
``docs/serving.md`` §4). The arbiter spawns a replacement only after it reaped the old worker
(gunicorn/arbiter.py ``manage_workers``), so the decision must be taken by the workers themselves.

How: the workers of one master share a directory (``<worker_tmp_dir>/coffee-serving-<master pid>``) holding one
marker file per accepting worker. A worker at its limit takes an exclusive ``flock`` on the directory's lock
file, counts the markers of the *other* live workers and starts its recycle only if at least ``workers - 1``
of them accept; it removes its own marker before releasing the lock, so the next worker at its limit sees it
gone and waits until the replacement has started accepting. With one worker the condition is always true:
the listening socket stays open in the master and the kernel queues connections for the replacement (the
gap is the replacement's boot, measured in ``docs/deployment.md``).

A marker of a process that no longer exists (SIGKILL, OOM) is ignored and removed. ``flock`` locks are
released by the kernel when their holder dies, so a killed worker never blocks the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_LOCK = ".lock"


def shared_directory(master_pid: int, tmp_dir: str | None) -> Path:
    """The directory shared by the workers of master ``master_pid`` (in gunicorn's ``worker_tmp_dir``)."""
    return Path(tmp_dir or tempfile.gettempdir()) / f"coffee-serving-{master_pid}"


def stopping_marker(master_pid: int, tmp_dir: str | None) -> Path:
    """The file master ``master_pid`` creates before it signals its workers to stop (``hooks`` ``stop``): a worker
    whose stop signal was lost while it was being forked finds it once its handlers are in place (``worker.py``)."""
    return shared_directory(master_pid, tmp_dir) / "stopping"


def remove_shared_directory(master_pid: int, tmp_dir: str | None) -> None:
    """Delete the directory of master ``master_pid`` (gunicorn ``on_exit``); no error if it never existed."""
    shutil.rmtree(shared_directory(master_pid, tmp_dir), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RecycleGate:
    """The accepting-worker registry of one worker: ``pid`` in a master's directory sized for ``workers``."""

    def __init__(self, directory: Path, *, pid: int, workers: int, max_wait: float = 60.0) -> None:
        self.directory = directory
        self.pid = pid
        self.workers = workers
        # Waiting is bounded: a gate that never opens (e.g. fewer workers after a TTOU) must not stop recycling.
        self.max_wait = max_wait
        self._marker = directory / str(pid)
        self._waiting_since: float | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def mark_accepting(self) -> None:
        """This worker accepts connections from now on (an unusable directory only loses the stagger)."""
        with contextlib.suppress(OSError), self._locked():
            self._marker.touch()

    def mark_stopped(self) -> None:
        """This worker no longer accepts (any shutdown cause). Idempotent."""
        with contextlib.suppress(OSError), self._locked():
            self._marker.unlink(missing_ok=True)

    def others_accepting(self) -> int:
        """Live workers other than this one that accept connections now (stale markers are removed)."""
        count = 0
        for entry in self.directory.iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.pid:
                continue
            if _alive(int(entry.name)):
                count += 1
            else:
                entry.unlink(missing_ok=True)
        return count

    def try_begin_recycle(self) -> tuple[bool, int]:
        """Take this worker's turn to recycle if ``workers - 1`` others accept: (allowed, others accepting).

        When allowed, the marker is removed under the same lock, so no second worker can take a turn on the
        strength of this one still accepting.
        """
        try:
            with self._locked():
                others = self.others_accepting()
                if others < self.workers - 1:
                    return False, others
                self._marker.unlink(missing_ok=True)
                return True, others
        except OSError:  # the shared directory is unusable: recycle as stock gunicorn would
            return True, -1

    def take_turn(self, *, limit: int, log: Any) -> bool:
        """Called on every tick once this worker reached its request ``limit``: True = start recycling now.

        Logs once when the worker has to wait; after ``max_wait`` seconds of waiting it recycles anyway, with a
        warning.
        """
        allowed, others = self.try_begin_recycle()
        if allowed:
            return True
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            log.info(
                "Worker %s reached max requests (%d); recycle waits: %d of %d other worker(s) accepting",
                self.pid,
                limit,
                others,
                self.workers - 1,
            )
        elif now - self._waiting_since > self.max_wait:
            log.warning("Worker %s waited %.0fs for its recycle turn: recycling now", self.pid, self.max_wait)
            self.mark_stopped()
            return True
        return False
