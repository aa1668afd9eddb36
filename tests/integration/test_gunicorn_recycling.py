"""Worker recycling (max_requests + jitter) under keep-alive load from several client kinds: no request lost,
recycles staggered (never two workers draining at once, never fewer than workers - 1 accepting)."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from devtools.processes import GunicornServer, running_gunicorn

LOAD_SECONDS = 10
CLIENTS = 4
PAUSE = 0.01  # seconds between a steady client's requests: ~100 rps each side of 2 cores, several recycles a second
PATHS = ["/health", "/_test/sleep?seconds=0.02", "/livez"]
_EVENT = re.compile(r"Worker (?P<pid>\d+) (?P<what>accepting|shutdown 1/3)|Worker exiting \(pid: (?P<gone>\d+)\)")


class Load:
    """Outcomes of every client thread: status counts per path, exceptions (lost requests), worker pids seen."""

    def __init__(self, server: GunicornServer) -> None:
        self.server = server
        self.outcomes: Counter[str] = Counter()
        self.lost: list[str] = []
        self.pids: set[str] = set()
        self.lock = threading.Lock()
        self.stop_at = time.monotonic() + LOAD_SECONDS

    def request(self, session: httpx.Client, path: str) -> None:
        try:
            response = session.get(self.server.url(path))
        except httpx.HTTPError as exc:
            with self.lock:
                self.lost.append(f"{path}: {exc!r}")
            return
        with self.lock:
            self.outcomes[f"{path} {response.status_code}"] += 1
            self.pids.add(response.headers["x-worker-pid"])

    def steady(self, n: int) -> None:
        """One keep-alive connection, a request every 10 ms (wrk-like)."""
        with httpx.Client(timeout=10) as session:
            for i in range(n, 1_000_000):
                if time.monotonic() >= self.stop_at:
                    return
                self.request(session, PATHS[i % len(PATHS)])
                time.sleep(PAUSE)

    def pooled(self, session: httpx.Client, n: int) -> None:
        """A thread of an httpx pool shared by several threads (connections reused across threads)."""
        for i in range(n, 1_000_000):
            if time.monotonic() >= self.stop_at:
                return
            self.request(session, PATHS[i % len(PATHS)])

    def pausing(self, n: int) -> None:
        """An upstream proxy's pattern: one connection, idle 0.3-2 s between requests, then reused."""
        pauses = random.Random(n)
        with httpx.Client(timeout=10) as session:
            while time.monotonic() < self.stop_at:
                self.request(session, "/livez")
                time.sleep(pauses.uniform(0.3, 2.0))


def _run(threads: list[tuple[Callable[..., None], tuple]]) -> None:
    started = [threading.Thread(target=target, args=args) for target, args in threads]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=LOAD_SECONDS + 30)


def stagger_violations(logs: str, workers: int) -> list[str]:
    """Moments (log lines) where two workers drained at once or fewer than ``workers - 1`` accepted, once all
    ``workers`` had accepted. A worker drains from its "shutdown 1/3" line to its "Worker exiting" line."""
    accepting: set[str] = set()
    draining: set[str] = set()
    full = False
    violations = []
    for line in logs.splitlines():
        event = _EVENT.search(line)
        if event is None:
            continue
        if event["gone"]:
            draining.discard(event["gone"])
            continue
        if event["what"] == "accepting":
            accepting.add(event["pid"])
            full = full or len(accepting) == workers
        else:
            accepting.discard(event["pid"])
            draining.add(event["pid"])
            if full and (len(draining) > 1 or len(accepting) < workers - 1):
                violations.append(line)
    return violations


@pytest.mark.serial
@pytest.mark.timeout(120)
def test_recycling_under_keepalive_load_loses_no_request():
    env = {"GUNICORN_MAX_REQUESTS": "50", "GUNICORN_MAX_REQUESTS_JITTER": "10", "GUNICORN_TIMEOUT": "10"}
    with running_gunicorn(workers=2, env=env) as server, httpx.Client(timeout=10) as pool:
        first_pids = set(server.worker_pids())
        load = Load(server)
        _run(
            [(load.steady, (n,)) for n in range(CLIENTS)]
            + [(load.pooled, (pool, n)) for n in range(2)]
            + [(load.pausing, (n,)) for n in range(2)]
        )
        logs = server.logs()
        recycles = logs.count("reached, recycling")
        assert load.lost == [], (load.lost[:5], len(load.lost), load.outcomes)
        assert set(load.outcomes) <= {f"{path} 200" for path in PATHS}, load.outcomes
        assert load.outcomes["/livez 200"] > 0
        assert recycles >= 3, logs[-3000:]
        assert len(load.pids) > len(first_pids), "workers were replaced"
        assert not first_pids & set(server.worker_pids()), "the first workers are gone"
        assert "WORKER TIMEOUT" not in logs and "Perhaps out of memory" not in logs
        assert stagger_violations(logs, 2) == []
        print(f"recycling: {sum(load.outcomes.values())} requests, {recycles} recycles, {len(load.pids)} worker pids")


def test_stagger_violations_reads_the_log():
    ok = "Worker 1 accepting\nWorker 2 accepting\nWorker 1 shutdown 1/3\nWorker exiting (pid: 1)\nWorker 3 accepting\n"
    assert stagger_violations(ok + "Worker 2 shutdown 1/3\n", 2) == []
    both = "Worker 1 accepting\nWorker 2 accepting\nWorker 1 shutdown 1/3\nWorker 2 shutdown 1/3\n"
    assert stagger_violations(both, 2) == ["Worker 2 shutdown 1/3"]
