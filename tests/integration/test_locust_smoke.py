"""The load profile itself: loadtests/locustfile.py run headless for a few seconds against the real stack
(gunicorn + 2 Uvicorn workers + the sandbox in auto-pay mode), with zero failures; and the pure report pieces."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from coffee_payment.devices.demo import DEMO_DEVICES
from devtools.processes import child_pids
from devtools.stack import Stack
from loadtests import compare, report
from loadtests.measure import LOCUSTFILE, LocustProfile, locust_argv

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def test_locustfile_devices_match_the_demo_data() -> None:
    # The locustfile copies the demo devices (importing the models would need Django inside locust).
    tree = ast.parse(LOCUSTFILE.read_text())
    devices = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DEVICES"
    )
    assert devices == {d.scenario: (d.device_uuid, d.drink_no, d.drink_name) for d in DEMO_DEVICES}


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_locustfile_headless_has_no_failures(stack: Stack, sandbox: httpx.Client, tmp_path: Path) -> None:
    sandbox.post("/_sandbox/config", json={"auto_pay": True, "latency_ms": 20}).raise_for_status()
    window = tmp_path / "window.json"
    profile = LocustProfile(
        users=6,
        spawn_rate=6,
        warmup_s=1,
        measure_s=5,
        extra=["--storm-weight", "1", "--poll-interval", "0.2", "--think-time", "0.2"],
    )
    done = subprocess.run(
        locust_argv(stack.base_url, profile, window),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert window.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(window.read_text())
    assert data["failures"] == [], data["failures"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert data["totals"]["requests"] > 20
    assert data["flow"] and data["flow"]["requests"] >= 1, "no customer flow reached make_pending"
    groups = set(data["groups"])
    assert {"GET /v1/pay", "GET /v1/order-status/[id]", "POST /v1/initiate-payment", "GET /health"} <= groups
    # Every response carried X-Worker-Pid naming one of the two workers. How the kernel spreads six
    # connections over them is not this test's business (the load report measures shares).
    assert data["worker_requests"] and "none" not in data["worker_requests"], data["worker_requests"]
    assert {int(pid) for pid in data["worker_requests"]} <= set(child_pids(stack.server.pid))


def test_ratios_goals_and_baseline_check() -> None:
    def run(rps: float, p99: float, health: float, shares: dict[str, int]) -> dict:
        return {
            "locust": {
                "seconds": 10,
                "classes": {"customer": {"rps": rps, "p99_ms": p99}},
                "flow": {"requests": rps, "failures": 0},
                "totals": {"requests": 100},
                "worker_requests": shares,
            },
            "wrk_health": {"rps": health},
            "samples": {"boot": {"master": 1}},
            "worker_class_for_bare": "W",
        }

    data = {
        "targets": {
            "runserver": run(10, 1000, 600, {"none": 10}),
            "uvicorn-worker": run(40, 150, 9000, {"2": 50, "3": 50}),
        },
        "recycling": run(39, 160, 2000, {"4": 1}),
        "bare": {"W": {"rps": 12000}},
    }
    data["derived"] = compare.derive(data)
    data["ratios"] = compare.ratios(data)
    assert data["ratios"]["uvicorn-worker.customer_rps_x"] == 4
    assert data["ratios"]["uvicorn-worker.health_vs_bare"] == 0.75
    assert data["derived"]["runserver"]["worker_shares"] == {"1": 1.0}
    goals = {g["goal"]: g for g in compare.goals(data)}
    assert data["ratios"]["uvicorn-worker.flows_x"] == 4
    assert data["ratios"]["uvicorn-worker.flows_x_worst"] == 4  # one round: the worst is the median
    # Issue 14's bound is 10× runserver's flows/s (worst round): 4× misses it by 60 %.
    throughput = goals["customer-flow throughput (flows/s) vs runserver DEBUG=1, worst round"]
    assert throughput["met"] is False and "60 % short of 10×" in throughput["miss"]
    assert goals["/health ceiling vs runserver (wrk)"]["met"] is True
    assert goals["customer-flow p99 vs runserver DEBUG=1, worst round"]["met"] is True
    # No runserver DEBUG=0 run and no Django floor in this data: reported, not judged.
    assert goals["customer-flow p99 vs runserver DEBUG=0, worst round"]["met"] is None
    assert goals["status JSON ceiling vs Django floor (wrk), worst round"]["met"] is None
    # No worker was replaced in the recycling window: reported, not judged.
    assert goals["throughput cost of max_requests recycling (measured)"]["met"] is None
    worse = dict(data["ratios"], **{"uvicorn-worker.flows_x": 2.0, "uvicorn-worker.customer_p99_x": 0.3})
    check = compare.check_baseline(worse, data["ratios"], tolerance=0.25)
    assert {r["ratio"] for r in check["regressions"]} == {"uvicorn-worker.flows_x", "uvicorn-worker.customer_p99_x"}
    assert compare.check_baseline(data["ratios"], data["ratios"], 0.25)["regressions"] == []
    data["goals"] = compare.goals(data)
    assert "uvicorn-worker" in report.markdown(data) and "<svg" in report.html(data)
