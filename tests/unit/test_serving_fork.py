"""Preload's fork hooks: nothing fork-unsafe crosses (database connections closed), shared pages frozen."""

from __future__ import annotations

import gc
import random
from types import SimpleNamespace

import pytest
from django.db import connections

from coffee_payment.serving import fork

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(20)]


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str, *args: object) -> None:
        self.warnings.append(message % args)


def _server(preload: bool) -> SimpleNamespace:
    return SimpleNamespace(cfg=SimpleNamespace(preload_app=preload), log=_Log())


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_before_fork_with_preload_closes_connections_and_freezes(unfrozen, monkeypatch):
    closed: list[str] = []
    wrapper = connections["default"]
    wrapper.ensure_connection()
    # The test database is SQLite in memory, whose close() Django ignores: record the call instead.
    monkeypatch.setattr(wrapper, "close", lambda: closed.append(wrapper.alias))
    gc.unfreeze()
    fork.before_fork(_server(True), worker=None)
    assert gc.get_freeze_count() > 0
    assert closed == ["default"]


def test_before_fork_without_preload_touches_nothing(unfrozen):
    gc.unfreeze()
    fork.before_fork(_server(False), worker=None)
    assert gc.get_freeze_count() == 0


def test_after_fork_reseeds_random():
    random.seed(1)
    expected_if_shared = random.random()
    random.seed(1)
    fork.after_fork(_server(True), worker=None)
    assert random.random() != expected_if_shared


def test_warm_up_populates_the_url_resolver():
    from django.urls import clear_url_caches, get_resolver

    clear_url_caches()
    fork.warm_up()
    assert get_resolver()._populated


def test_preload_of_a_non_django_app_forks_without_warm_up(tmp_path):
    """The load suite's bare ASGI app under gunicorn.conf.py: the master must not touch Django."""
    import subprocess
    import sys

    from devtools.processes import PROJECT_ROOT

    code = (
        "import sys; from types import SimpleNamespace as N; from coffee_payment.serving import fork; "
        "print(fork.warm_up()); fork.before_fork(N(cfg=N(preload_app=True), log=None), None)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=15, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr
