"""The recycle gate: a worker at its limit recycles only while the other workers accept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coffee_payment.serving.stagger import RecycleGate, remove_shared_directory, shared_directory

pytestmark = pytest.mark.timeout(20)


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, timeout=10
    )
    return int(done.stdout)


def _live_pids(count: int) -> tuple[list[subprocess.Popen], list[int]]:
    processes = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(count)]
    return processes, [p.pid for p in processes]


@pytest.fixture
def live():
    processes, pids = _live_pids(3)
    yield pids
    for process in processes:
        process.kill()
        process.wait(timeout=5)


def test_two_workers_never_both_recycle(tmp_path: Path, live: list[int]) -> None:
    a, b, a_next = (RecycleGate(tmp_path, pid=pid, workers=2) for pid in live)
    a.mark_accepting()
    b.mark_accepting()
    assert a.try_begin_recycle() == (True, 1)
    assert b.try_begin_recycle() == (False, 0)  # a is draining and its replacement not accepting yet
    a_next.mark_accepting()
    assert b.try_begin_recycle() == (True, 1)


def test_one_worker_always_may_recycle(tmp_path: Path, live: list[int]) -> None:
    only = RecycleGate(tmp_path, pid=live[0], workers=1)
    only.mark_accepting()
    assert only.try_begin_recycle() == (True, 0)


def test_marker_of_a_dead_worker_does_not_count(tmp_path: Path, live: list[int]) -> None:
    gate = RecycleGate(tmp_path, pid=live[0], workers=2)
    gate.mark_accepting()
    RecycleGate(tmp_path, pid=_dead_pid(), workers=2).mark_accepting()
    assert gate.try_begin_recycle() == (False, 0)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == [str(live[0])]


def test_stopped_worker_does_not_count(tmp_path: Path, live: list[int]) -> None:
    a, b = (RecycleGate(tmp_path, pid=pid, workers=2) for pid in live[:2])
    a.mark_accepting()
    b.mark_accepting()
    b.mark_stopped()
    b.mark_stopped()  # idempotent
    assert a.try_begin_recycle() == (False, 0)


def test_unusable_directory_falls_back_to_stock_recycling(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert RecycleGate(blocker / "sub", pid=1, workers=2).try_begin_recycle() == (True, -1)


def test_shared_directory_is_per_master(tmp_path: Path) -> None:
    directory = shared_directory(4242, str(tmp_path))
    assert directory == tmp_path / "coffee-serving-4242"
    RecycleGate(directory, pid=1, workers=1).mark_accepting()
    remove_shared_directory(4242, str(tmp_path))
    assert not directory.exists()
    remove_shared_directory(4242, str(tmp_path))  # no error when gone


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    warning = info


def test_waiting_worker_logs_once_then_takes_its_turn(tmp_path: Path, live: list[int]) -> None:
    a, _b_draining, b_next = (RecycleGate(tmp_path, pid=pid, workers=2) for pid in live)
    a.mark_accepting()
    log = _Log()
    assert a.take_turn(limit=50, log=log) is False
    assert a.take_turn(limit=50, log=log) is False
    assert log.lines == [f"Worker {live[0]} reached max requests (50); recycle waits: 0 of 1 other worker(s) accepting"]
    b_next.mark_accepting()
    assert a.take_turn(limit=50, log=log) is True


def test_waiting_is_bounded(tmp_path: Path, live: list[int]) -> None:
    gate = RecycleGate(tmp_path, pid=live[0], workers=3, max_wait=0.2)  # e.g. after a TTOU: one sibling fewer
    RecycleGate(tmp_path, pid=live[1], workers=3).mark_accepting()
    gate.mark_accepting()
    log = _Log()
    assert gate.take_turn(limit=50, log=log) is False
    time.sleep(0.3)
    assert gate.take_turn(limit=50, log=log) is True
    assert log.lines[-1] == f"Worker {live[0]} waited 0s for its recycle turn: recycling now"
    assert not (tmp_path / str(live[0])).exists()


def test_unusable_directory_never_breaks_a_worker(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    gate = RecycleGate(blocker / "sub", pid=1, workers=2)
    gate.mark_accepting()
    gate.mark_stopped()


def test_the_masters_stopping_marker_is_created_in_its_shared_directory_and_not_counted_as_a_worker(tmp_path):
    from coffee_payment.serving import hooks
    from coffee_payment.serving.stagger import RecycleGate, shared_directory, stopping_marker

    marker = stopping_marker(4242, str(tmp_path))
    assert marker.parent == shared_directory(4242, str(tmp_path))
    hooks._mark(marker)  # what the master's stop() does before it signals
    assert marker.exists()
    gate = RecycleGate(marker.parent, pid=os.getpid(), workers=2)
    assert gate.others_accepting() == 0
