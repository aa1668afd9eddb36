"""The rollout drill's accounting, verdict and report.

Three witnesses, each able to fail the drill and name the cause:

- **the customers** (devtools/rollout_traffic.py): every request through the ingress is completed, refused
  before sending, or lost (sent without a usable answer, or a 5xx) — by phase and route;
- **nginx's access log** (devtools/ingress.py): every attempt at a pod. An attempt that failed at the pod's
  address (nginx's ``502``/``504`` for it) is a request routed to a pod that could not take it. nginx resends a
  GET, or a POST it could not deliver, to another pod (``proxy_next_upstream``) — the customer never sees it,
  but the rollout choreography failed (on a cluster the pod's address may not even refuse: each such attempt
  costs ``proxy-connect-timeout``); a POST that reached the pod is not resent and the customer gets the 502;
- **the kernel's TCP table** (:class:`ServerCloseWatch`): a pod that actively closes an upstream connection
  before it drains closed an idle keep-alive connection that nginx still held — nginx may write the next
  request into it at that instant (a reset: a 502 for a POST). Seen only when the server's keep-alive timeout
  is shorter than the ingress's.

Dispenses: every paid order must end with one make or an explicit state (devtools/drill_dispense.py).
"""

from __future__ import annotations

import json
import math
import threading
from typing import TYPE_CHECKING, Any

from devtools import drill_dispense
from devtools.processes import tcp_table

if TYPE_CHECKING:
    from devtools.rollout import Rollout

# /proc/net/tcp states of the side that closed first: FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSING.
ACTIVE_CLOSE = {"04", "05", "06", "0B"}


class ServerCloseWatch:
    """Samples /proc/net/tcp{,6}: connections a pod (local port) closed first, before its drain began."""

    def __init__(self) -> None:
        self.ports: set[int] = set()
        self.draining: set[int] = set()
        self.closed: dict[int, set[int]] = {}  # pod port -> peer ports of connections it closed while serving
        self._stop = threading.Event()

    def add(self, port: int) -> None:
        self.ports.add(port)
        self.closed.setdefault(port, set())

    def drain_started(self, port: int) -> None:
        """From now on this pod closes connections on purpose (gunicorn's drain)."""
        self.draining.add(port)

    def sample(self) -> None:
        for local, remote, state, _queued in tcp_table():
            if local in self.ports and local not in self.draining and state in ACTIVE_CLOSE:
                self.closed[local].add(remote)

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()


def failed_attempts(rollout: Rollout) -> list[dict[str, Any]]:
    """Attempts nginx made at a pod that failed there (from the access log), each with the pod's state then."""
    by_port = {p.port: p for p in rollout.pods}
    t0 = rollout.marks["traffic_start"]
    found = []
    for entry in rollout.ingress.requests():
        for address, status in zip(entry["ua"], entry["us"], strict=False):
            if status not in ("502", "504"):
                continue
            pod = by_port.get(int(address.rsplit(":", 1)[1])) if ":" in address else None
            at = entry["t"] - entry["rt"]  # when nginx began the request
            state = "unknown pod"
            if pod is not None:
                term, removed = pod.events.get("term"), pod.events.get("removed")
                if term is not None and at >= term - 0.05 and (removed is None or at <= removed + 0.5):
                    state = "after TERM, still in the upstream"
                else:
                    state = "serving"
            found.append(
                {
                    "at_s": round(at - t0, 3),
                    "request": f"{entry['m']} {entry['u']}",
                    "pod": pod.name if pod else address,
                    "pod_state": state,
                    "answered": entry["s"],
                    "resent_to_another_pod": len(entry["ua"]) > 1 and entry["s"] < 500,
                }
            )
    return found


def judge(rollout: Rollout, traffic: dict[str, Any], attempts: list[dict[str, Any]], dispenses: dict) -> list[str]:
    """Every reason to fail, each naming its cause."""
    o, reasons = rollout.o, []
    lost = {
        f"{phase}: {route}": t["lost"] for phase, p in traffic["phases"].items() for route, t in p["routes"].items()
    }
    lost = {k: v for k, v in lost.items() if v}
    if lost:
        first = traffic.get("lost_requests", [])[:2]
        reasons.append(f"{sum(lost.values())} customer request(s) lost through the ingress: {lost}; first: {first}")
    after_term = [a for a in attempts if a["pod_state"] == "after TERM, still in the upstream"]
    if after_term:
        if o.prestop <= 0:
            cause = "no preStop: TERM closed the pod's listener while it was still in the upstream"
        elif o.endpoints_lag > o.prestop:
            cause = (
                f"--endpoints-lag {o.endpoints_lag:g}s > preStop sleep {o.prestop:g}s: the pod left the upstream "
                f"{o.endpoints_lag - o.prestop:g}s after TERM closed its listener"
            )
        else:
            cause = "the pod stopped accepting before the ingress removed it"
        resent = sum(a["resent_to_another_pod"] for a in after_term)
        reasons.append(
            f"{len(after_term)} request(s) routed to a terminating pod that no longer accepted them ({resent} resent "
            f"by nginx to another pod, {len(after_term) - resent} answered 5xx) — {cause}"
        )
    others = [a for a in attempts if a["pod_state"] != "after TERM, still in the upstream"]
    if others:
        reasons.append(f"{len(others)} request attempt(s) failed at a serving pod: {others[:3]}")
    closes = sum(len(peers) for peers in rollout.watch.closed.values())
    if closes:
        reasons.append(
            f"the pods closed {closes} idle keep-alive connection(s) that nginx still held — GUNICORN_KEEPALIVE "
            f"{o.server_keepalive}s is not longer than the ingress's upstream keepalive_timeout "
            f"{o.upstream_keepalive_timeout:g}s, so nginx can send a request into a closing connection (502 on a POST)"
        )
    failed_flows = {k: v for k, v in traffic["flows"].items() if k != "completed"}
    if failed_flows:
        reasons.append(f"customer flows that did not reach make_pending: {failed_flows}")
    if not traffic["flows"].get("completed"):
        reasons.append("no customer flow completed: the drill measured nothing")
    killed = [p.name for p in rollout.pods if "sigkill" in p.events]
    if killed:
        reasons.append(f"SIGKILL at the grace period ({o.grace:g}s): {killed}")
    bad_exit = {p.name: p.exit_code for p in rollout.pods if "term" in p.events and p.exit_code not in (0, None)}
    if bad_exit:
        reasons.append(f"pods exited with a non-zero code: {bad_exit}")
    return reasons + drill_dispense.judge(dispenses)


def throughput_dip(traffic: dict[str, Any], phases: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The rollout's worst whole second against the steady state around it (the whole seconds of ``before`` and
    ``after``: old pods warm before, new pods warm after), as completed requests per second and a percentage."""
    per_second = {int(k): v for k, v in traffic["per_second"].items()}

    def seconds(phase: str) -> list[int]:
        start, end = phases[phase]
        return [per_second.get(s, 0) for s in range(math.ceil(start), int(end))]

    steady, during = seconds("before") + seconds("after"), seconds("rollout")
    if not steady or not during:
        return {"steady_rps": None, "worst_rollout_second_rps": None, "dip_pct": None}
    mean = sum(steady) / len(steady)
    return {
        "steady_rps": round(mean, 1),
        "worst_rollout_second_rps": min(during),
        "dip_pct": round(max(0.0, 100 * (1 - min(during) / mean)), 1) if mean else None,
    }


def build(rollout: Rollout, dispenses: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the run (the ``--json`` file)."""
    marks, t0 = rollout.marks, rollout.marks["traffic_start"]
    phases = {
        "ramp": (0.0, marks["before_start"] - t0),
        "before": (marks["before_start"] - t0, marks["rollout_start"] - t0),
        "rollout": (marks["rollout_start"] - t0, marks["rollout_end"] - t0),
        "after": (marks["rollout_end"] - t0, marks["traffic_end"] - t0),
    }
    traffic = rollout.traffic.summary(phases)
    attempts = failed_attempts(rollout)
    reasons = judge(rollout, traffic, attempts, dispenses)
    dip = throughput_dip(traffic, phases)
    return {
        "options": rollout.options(),
        "passed": not reasons,
        "reasons": reasons,
        "traffic": traffic,
        "throughput": dip,
        "nginx_failed_attempts": attempts,
        "nginx_requests": len(rollout.ingress.requests()),
        "server_closed_idle_connections": {str(k): len(v) for k, v in rollout.watch.closed.items()},
        "dispenses": dispenses,
        "pods": [p.as_dict(t0) for p in rollout.pods],
        "reloads_s": [(round(at - t0, 3), ports) for at, ports in rollout.ingress.reloads],
    }


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False)


def render(report: dict[str, Any]) -> str:
    """The human-readable report printed after a run."""
    o, phases = report["options"], report["traffic"]["phases"]
    lines = [
        f"Rolling-deploy drill: {o['pods']} pods × {o['workers']} workers behind nginx; preStop "
        f"{o['prestop']:g}s, endpoints lag {o['endpoints_lag']:g}s, grace {o['grace']:g}s; keep-alive: server "
        f"{o['server_keepalive']}s, ingress upstream {o['upstream_keepalive_timeout']:g}s",
        f"  {'phase':<8} {'s':>5} {'sent':>6} {'ok':>6} {'refused':>7} {'lost':>5} {'rps':>6} {'min rps':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7}",
    ]
    for name, p in phases.items():
        lines.append(
            f"  {name:<8} {p['seconds']:>5} {p['sent']:>6} {p['completed']:>6} {p['refused']:>7} {p['lost']:>5} "
            f"{p['rps_mean'] or 0:>6} {p['rps_min_1s'] or 0:>7} {p['latency_ms']['p50'] or 0:>7} "
            f"{p['latency_ms']['p99'] or 0:>7}"
        )
    dip = report["throughput"]
    lines.append(
        f"  throughput: steady {dip['steady_rps']} req/s (before + after), worst second of the rollout "
        f"{dip['worst_rollout_second_rps']} req/s: dip {dip['dip_pct']}%; p99 during the rollout "
        f"{phases['rollout']['latency_ms']['p99']} ms"
    )
    lines.append(f"  customer flows: {report['traffic']['flows']}")
    retried = {name: p["retried_after_reset"] for name, p in phases.items() if p["retried_after_reset"]}
    if retried:
        lines.append(f"  resent after nginx closed a reused client connection before any answer (reload): {retried}")
    lines.append(
        f"  nginx: {report['nginx_requests']} requests logged, {len(report['nginx_failed_attempts'])} failed "
        "attempt(s) at a pod"
    )
    closes = sum(report["server_closed_idle_connections"].values())
    lines.append(f"  idle upstream connections closed by a pod before its drain: {closes}")
    d = report["dispenses"]
    lines.append(
        f"  dispenses: {d.get('paid_in_flight', 0)} paid orders, make states {d.get('make_states', {})}, "
        f"{d.get('recovered_by_sweeper', 0)} recovered by the sweeper, {len(d.get('lost', []))} silently unmade, "
        f"{len(d.get('double', []))} made twice"
    )
    for pod in report["pods"]:
        events = ", ".join(f"{k} {v:g}" for k, v in pod["events_s"].items())
        state = "serving" if "term" not in pod["events_s"] else f"exit {pod['exit_code']}"
        lines.append(f"  {pod['name']:<12} :{pod['port']} {state:<8} [{events}]")
    verdict = "PASS: no request or dispense lost" if report["passed"] else "FAIL: " + "; ".join(report["reasons"])
    return "\n".join([*lines, verdict])
