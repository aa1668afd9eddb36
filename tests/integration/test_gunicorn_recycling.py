"""Worker recycling (max_requests + jitter) under steady keep-alive load: no request lost, /health stays 200."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from devtools.processes import running_gunicorn

LOAD_SECONDS = 30
CLIENTS = 4
PAUSE = 0.01  # seconds between a client's requests: ~100 rps each side of 2 cores, several recycles a second


@pytest.mark.timeout(120)
def test_recycling_under_keepalive_load_loses_no_request():
    env = {"GUNICORN_MAX_REQUESTS": "50", "GUNICORN_MAX_REQUESTS_JITTER": "10", "GUNICORN_TIMEOUT": "10"}
    with running_gunicorn(workers=2, env=env) as server:
        first_pids = set(server.worker_pids())
        seen_pids: set[str] = set()
        outcomes: Counter[str] = Counter()
        lost: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + LOAD_SECONDS

        def client(n: int) -> None:
            paths = ["/health", "/_test/sleep?seconds=0.02", "/livez"]
            with httpx.Client(timeout=10) as session:  # one keep-alive connection, reused
                i = n
                while time.monotonic() < stop_at:
                    path = paths[i % len(paths)]
                    i += 1
                    try:
                        response = session.get(server.url(path))
                    except httpx.HTTPError as exc:
                        with lock:
                            lost.append(f"{path}: {exc!r}")
                        continue
                    with lock:
                        outcomes[f"{path} {response.status_code}"] += 1
                        seen_pids.add(response.headers["x-worker-pid"])
                    time.sleep(PAUSE)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=LOAD_SECONDS + 30)
        logs = server.logs()
        recycles = logs.count("reached, recycling")
        assert lost == [], (lost[:5], len(lost), outcomes)
        assert set(outcomes) <= {"/health 200", "/_test/sleep?seconds=0.02 200", "/livez 200"}, outcomes
        assert outcomes["/health 200"] > 0
        assert recycles >= 3, logs[-3000:]
        assert len(seen_pids) > len(first_pids), "workers were replaced"
        assert not first_pids & set(server.worker_pids()), "the first workers are gone"
        assert "WORKER TIMEOUT" not in logs and "Perhaps out of memory" not in logs
        print(f"recycling: {sum(outcomes.values())} requests, {recycles} recycles, {len(seen_pids)} worker pids")
