"""Fixtures for the container session: a private dockerd, the stand-in base image, the project's image.

Everything the fixtures start is removed in their teardown, also when a test fails or times out.
Timings are collected in ``TIMINGS`` and printed at the end of the run (and written to reports/).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tools.container.dockerd import PrivateDockerd, reap_stale
from tools.container.image import REPO, build_image

TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("container timings (seconds)")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{name:45s} {seconds:8.2f}")
    reports = REPO / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "container-timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


def _timed(name: str):
    class _Timer:
        def __enter__(self) -> None:
            self.start = time.monotonic()

        def __exit__(self, *exc: object) -> None:
            TIMINGS[name] = round(time.monotonic() - self.start, 2)

    return _Timer()


@pytest.fixture(scope="session")
def timings() -> dict[str, float]:
    return TIMINGS


@pytest.fixture(scope="module")
def dockerd():
    if os.geteuid() != 0:
        pytest.fail("the container session starts its own dockerd: run it as root (as CI does)")
    reap_stale()
    daemon = PrivateDockerd()

    # A TERM (CI's time limit, a killed nox) would end pytest without teardown and leave the daemon running:
    # turn it into KeyboardInterrupt, which pytest answers by running the finalizers.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with _timed("dockerd start"):
            daemon.start()
        yield daemon
    finally:
        with _timed("dockerd stop + cleanup"):
            daemon.stop()
        signal.signal(signal.SIGTERM, previous)
    assert not Path(daemon.root).exists(), f"{daemon.root} was not removed"


@pytest.fixture(scope="module")
def base_image(dockerd: PrivateDockerd) -> str:
    """The local stand-in tagged python:3.11-slim (no registry here); cached rootfs after the first run."""
    script = REPO / "tools" / "container" / "standin_base.sh"
    cache = Path(os.environ.get("COFFEE_CONTAINER_CACHE", "/var/cache/coffee-container"))
    cached = (cache / "python-3.11-slim-standin.tar").is_file()
    with _timed("stand-in python:3.11-slim " + ("(import of the cached rootfs)" if cached else "(debootstrap)")):
        subprocess.run(["sh", str(script)], env=dockerd.env, check=True, timeout=900)
    return "python:3.11-slim"


@pytest.fixture(scope="module")
def image(dockerd: PrivateDockerd, base_image: str) -> str:
    tag = f"coffee-payment:test-{secrets.token_hex(3)}"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in dockerd.env.items():
            mp.setenv(key, value)
        # --network host: build steps (pip) reach PyPI through the host's network; the daemon has no bridge.
        with _timed("docker build (fresh daemon, no layer cache)"):
            build_image(tag, "docker", extra_args=("--network", "host"))
    layers = ("image", "inspect", "-f", "{{json .RootFS.Layers}}", tag)
    first = json.loads(dockerd.docker(*layers, capture=True).stdout)
    with _timed("docker build again (layer cache)"):
        dockerd.docker("build", "--network", "host", "-q", "-t", tag, str(REPO), capture=True, timeout=300)
    again = json.loads(dockerd.docker(*layers, capture=True).stdout)
    base = json.loads(dockerd.docker(*layers[:-1], base_image, capture=True).stdout)
    # Base, user, venv: reused even if someone edited code in between (the venv layer comes before `COPY . .`).
    keep = len(base) + 2
    assert again[:keep] == first[:keep], "the dependency layers were not reused from the cache"
    return tag
