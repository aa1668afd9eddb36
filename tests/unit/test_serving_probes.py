"""Probes wrapper, shared probe logic, drain state and the drain bound — in-process, no server."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from coffee_payment.serving import probes
from coffee_payment.serving.probes import DrainState, probe_response, wrap
from coffee_payment.serving.worker import drain_timeout, idle_grace


async def _django_stand_in(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": b"not found"})


def _call(app, path: str, method: str = "GET", query: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
    messages = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "path": path, "method": method, "query_string": query, "headers": []}
    asyncio.run(app(scope, receive, send))
    start, body = messages[0], b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], dict(start["headers"]), body


@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", ["/health", "/livez", "/readyz"])
def test_probes_answer_without_the_app(path):
    status, headers, body = _call(wrap(_django_stand_in, state=DrainState()), path)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers[b"x-worker-pid"] == str(os.getpid()).encode()


def test_readyz_503_while_shutting_down_health_and_livez_stay_200():
    state = DrainState(shutting_down=True)
    app = wrap(_django_stand_in, state=state)
    assert _call(app, "/readyz")[0] == 503
    assert json.loads(_call(app, "/readyz")[2]) == {"status": "draining"}
    assert _call(app, "/health")[0] == 200
    assert _call(app, "/livez")[0] == 200


def test_drain_file_flips_readiness(tmp_path):
    flag = tmp_path / "drain"
    state = DrainState(drain_file=str(flag))
    assert probe_response("/readyz", "GET", state).status == 200
    flag.touch()
    assert probe_response("/readyz", "GET", state).status == 503
    flag.unlink()
    assert probe_response("/readyz", "GET", state).status == 200


def test_head_has_no_body_and_post_is_405():
    app = wrap(_django_stand_in, state=DrainState())
    status, headers, body = _call(app, "/health", "HEAD")
    assert (status, body, headers[b"content-length"]) == (200, b"", b"15")
    status, headers, _ = _call(app, "/health", "POST")
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"


def test_other_paths_reach_the_app_with_the_pid_header():
    status, headers, body = _call(wrap(_django_stand_in, state=DrainState()), "/orders/1")
    assert (status, body) == (404, b"not found")
    assert headers[b"x-worker-pid"] == str(os.getpid()).encode()


def test_test_endpoint_off_by_default(monkeypatch):
    monkeypatch.delenv("SERVING_TEST_ENDPOINTS", raising=False)
    assert _call(wrap(_django_stand_in), "/_test/sleep", query=b"seconds=0")[0] == 404


@pytest.mark.timeout(10)
def test_test_endpoint_sleeps_and_validates():
    app = wrap(_django_stand_in, test_endpoints=True)
    status, _, body = _call(app, "/_test/sleep", query=b"seconds=0.05")
    assert status == 200 and json.loads(body) == {"slept": 0.05, "worker_pid": os.getpid()}
    for bad in (
        b"",
        b"seconds=",
        b"seconds=-1",
        b"seconds=nan",
        b"seconds=inf",
        b"seconds=121",
        b"seconds=x",
        b"seconds=1&seconds=2",
    ):
        assert _call(app, "/_test/sleep", query=bad)[0] == 400, bad


def test_mark_shutting_down_sets_the_process_state(monkeypatch):
    monkeypatch.setattr(probes, "STATE", DrainState())
    assert probe_response("/readyz", "GET").status == 200
    probes.mark_shutting_down()
    assert probe_response("/readyz", "GET").status == 503


@pytest.mark.parametrize(
    ("timeout", "graceful", "expected"),
    [(30, 30, 27.0), (30, 10, 9.0), (10, 30, 9.0), (100, 100, 95.0), (2, 2, 1.0), (1, 1, 0.5), (1, 30, 0.5)],
)
def test_drain_timeout_stays_below_both_deadlines(timeout, graceful, expected):
    drain = drain_timeout(timeout, graceful)
    assert drain == expected
    assert 0 < drain < min(timeout, graceful)


def test_idle_grace_is_short():
    assert idle_grace(75, 27.0) == 1.0
    assert idle_grace(1, 0.5) == 0.125
