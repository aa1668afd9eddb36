"""The rollout drill's parts that need no server: its nginx config, its options, its defaults (the manifests'
numbers), and the verdict naming each cause from what its witnesses saw."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from devtools.ingress import IngressSettings, render
from devtools.rollout import ASSUMED_ENDPOINTS_LAG_S, Pod, RolloutOptions
from devtools.rollout_report import ServerCloseWatch, failed_attempts, judge
from devtools.rollout_traffic import Traffic
from tests.unit.test_k8s_manifests import (
    LB_IDLE_TIMEOUT_S,
    config_data,
    one,
    prestop_sleep,
    rendered,
    server_container,
)


def test_nginx_config_carries_ingress_nginx_defaults(tmp_path: Path) -> None:
    conf = render(IngressSettings(), port=8080, upstream_ports=[9001, 9002], prefix=tmp_path)
    for line in (
        "listen 127.0.0.1:8080;",
        "server 127.0.0.1:9001 max_fails=0;",
        "server 127.0.0.1:9002 max_fails=0;",
        "keepalive 320;",
        "keepalive_timeout 60s;",
        "keepalive_requests 10000;",
        "proxy_next_upstream error timeout;",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 35s;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',  # without it nginx sends "Connection: close" and keeps nothing alive
        "daemon off;",
    ):
        assert line in conf, line
    assert "non_idempotent" not in conf  # a POST that reached a pod is never resent


def test_nginx_config_needs_a_pod(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one pod"):
        render(IngressSettings(), port=8080, upstream_ports=[], prefix=tmp_path)


def test_drill_defaults_are_the_production_manifests() -> None:
    manifests = rendered("production")
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    options = RolloutOptions()
    assert options.prestop == prestop_sleep(server_container(manifests))
    assert options.grace == pod["terminationGracePeriodSeconds"]
    assert options.graceful_timeout == int(config_data(manifests)["GUNICORN_GRACEFUL_TIMEOUT"])
    assert options.server_keepalive == int(config_data(manifests)["GUNICORN_KEEPALIVE"])
    assert options.upstream_keepalive_timeout == IngressSettings().keepalive_timeout == LB_IDLE_TIMEOUT_S
    assert options.endpoints_lag == ASSUMED_ENDPOINTS_LAG_S <= options.prestop
    annotations = one(manifests, "Ingress")["metadata"]["annotations"]
    assert IngressSettings().read_timeout == float(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    assert IngressSettings().connect_timeout == float(annotations["nginx.ingress.kubernetes.io/proxy-connect-timeout"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pods": 0}, "--pods and --workers"),
        ({"customers": 0}, "--customers"),
        ({"endpoints_lag": -1}, "--endpoints-lag must be"),
        ({"prestop": float("nan")}, "--prestop must be"),
        ({"prestop": 10, "grace": 10}, "--grace must leave"),
        ({"server_keepalive": 0}, "--server-keepalive"),
        ({"json_path": "/nonexistent/dir/r.json"}, "directory does not exist"),
    ],
)
def test_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RolloutOptions(**options).validate()


def _rollout(tmp_path: Path, *, log: list[dict], **options) -> SimpleNamespace:
    """A finished rollout as the report sees it: one old pod (TERM at 10, removed at 13), one new pod."""
    old = Pod("pod-1(old)", SimpleNamespace(port=9001), tmp_path / "d1", {"term": 10.0, "removed": 13.0})
    new = Pod("pod-2(new)", SimpleNamespace(port=9002), tmp_path / "d2", {"added": 9.0})
    old.exit_code = 0
    return SimpleNamespace(
        o=RolloutOptions(**options),
        pods=[old, new],
        watch=ServerCloseWatch(),
        marks={"traffic_start": 0.0},
        ingress=SimpleNamespace(requests=lambda: log),
    )


TRAFFIC = {"phases": {"rollout": {"routes": {"GET /v1/pay": {"lost": 0}}}}, "flows": {"completed": 5}}
RESENT = {"t": 11.2, "m": "GET", "u": "/health", "s": 200, "ua": ["127.0.0.1:9001", "127.0.0.1:9002"],
          "us": ["502", "200"], "rt": 0.2}  # fmt: skip


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        ({"prestop": 0, "endpoints_lag": 3}, "no preStop: TERM closed the pod's listener while it was still in"),
        ({"prestop": 2, "endpoints_lag": 5}, "--endpoints-lag 5s > preStop sleep 2s: the pod left the upstream 3s"),
    ],
)
def test_requests_routed_to_a_closed_pod_fail_the_drill_and_name_the_cause(tmp_path, options, cause) -> None:
    rollout = _rollout(tmp_path, log=[RESENT], **options)
    attempts = failed_attempts(rollout)
    assert attempts == [
        {
            "at_s": 11.0,
            "request": "GET /health",
            "pod": "pod-1(old)",
            "pod_state": "after TERM, still in the upstream",
            "answered": 200,
            "resent_to_another_pod": True,
        }
    ]
    (reason,) = judge(rollout, TRAFFIC, attempts, {})
    assert "1 request(s) routed to a terminating pod" in reason and "(1 resent by nginx" in reason
    assert cause in reason


def test_idle_connections_closed_by_a_pod_fail_the_drill_naming_the_keepalive_order(tmp_path) -> None:
    rollout = _rollout(tmp_path, log=[], server_keepalive=2)
    rollout.watch.add(9002)
    rollout.watch.closed[9002] = {40001, 40002}
    (reason,) = judge(rollout, TRAFFIC, [], {})
    assert "closed 2 idle keep-alive connection(s)" in reason
    assert "GUNICORN_KEEPALIVE 2s is not longer than the ingress's upstream keepalive_timeout 60s" in reason


def test_lost_requests_flows_and_dispenses_fail_the_drill(tmp_path) -> None:
    rollout = _rollout(tmp_path, log=[])
    traffic = {
        "phases": {"rollout": {"routes": {"POST /v1/initiate-payment": {"lost": 2}}}},
        "flows": {"completed": 3, "failed: initiate-payment": 2},
    }
    reasons = judge(rollout, traffic, [], {"lost": ["o1"], "double": []})
    assert reasons[0].startswith(
        "2 customer request(s) lost through the ingress: {'rollout: POST /v1/initiate-payment': 2}"
    )
    assert "customer flows that did not reach make_pending: {'failed: initiate-payment': 2}" in reasons
    assert any("silently unmade" in r for r in reasons)


def test_a_clean_rollout_passes(tmp_path) -> None:
    rollout = _rollout(tmp_path, log=[{**RESENT, "ua": ["127.0.0.1:9002"], "us": ["200"]}])
    assert judge(rollout, TRAFFIC, failed_attempts(rollout), {"lost": [], "double": []}) == []


def _traffic_against(handler) -> tuple[Traffic, httpx.AsyncClient]:
    traffic = Traffic("http://ingress", "http://ingress/v1/pay?deviceUuid=d&uuid=u", customers=1, probes=0)
    return traffic, httpx.AsyncClient(base_url="http://ingress", transport=httpx.MockTransport(handler))


def test_a_request_crossing_nginx_closing_an_idle_connection_is_resent_once_and_counted() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, json={"redirect_url": "x"})

    async def main() -> httpx.Response | None:
        traffic, client = _traffic_against(handler)
        async with client:
            response = await traffic._send(client, "POST", "/v1/initiate-payment", "POST pay", json={"order_id": 1})
        tally = traffic.tallies[("ramp", "POST pay")]
        assert (tally.sent, tally.completed, tally.lost, dict(tally.retried)) == (1, 1, 0, {"RemoteProtocolError": 1})
        return response

    assert asyncio.run(main()).status_code == 200 and calls == ["POST", "POST"]


def test_a_5xx_through_the_ingress_is_lost_with_the_pod_that_answered() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"X-Upstream": "127.0.0.1:9001"}, text="busy")

    async def main() -> Traffic:
        traffic, client = _traffic_against(handler)
        traffic.phase = "rollout"
        async with client:
            assert await traffic._send(client, "GET", "/v1/order-status/1", "GET status") is None
        return traffic

    traffic = asyncio.run(main())
    assert traffic.tallies[("rollout", "GET status")].lost_kinds == {"HTTP 503": 1}
    (lost,) = traffic.lost
    assert (lost["phase"], lost["route"], lost["kind"], lost["pod"], lost["body"]) == (
        "rollout",
        "GET status",
        "HTTP 503",
        "127.0.0.1:9001",
        "busy",
    )
