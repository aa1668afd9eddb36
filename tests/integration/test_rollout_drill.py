"""The rolling-deploy drill, CI size: 2 pods behind Debian's nginx, short customer load, judged from its JSON
report; and one negative control (no preStop) that must fail and name its cause. The full drill (3 pods, the
manifests' timings) is ``nox -s rollout``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devtools.stack import ROOT

pytestmark = [pytest.mark.timeout(200), pytest.mark.serial]

# One worker per pod and short phases: the drill boots 4 pods, so its time is mostly Django starting up.
CI = {"pods": "2", "workers": "1", "customers": "4", "warmup": "4", "cooldown": "2", "prestop": "2"}


def drill(tmp_path, **options: str) -> tuple[int, dict, str]:
    """Run ``invoke drill-rollout`` with the CI options overridden by ``options``; (exit code, JSON, output)."""
    report = tmp_path / "rollout.json"
    merged = CI | {name.replace("_", "-"): value for name, value in options.items()}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "drill-rollout", *(f"--{k}={v}" for k, v in merged.items()), "--json", report],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=190,
    )
    assert report.exists(), done.stdout + done.stderr
    return done.returncode, json.loads(report.read_text()), done.stdout + done.stderr


def test_rollout_behind_nginx_loses_no_request_and_no_dispense(tmp_path):
    code, report, output = drill(tmp_path, endpoints_lag="1")
    assert code == 0, output
    assert report["passed"] and report["reasons"] == []
    phases = report["traffic"]["phases"]
    assert phases["rollout"]["completed"] > 100 and phases["before"]["completed"] > 10
    assert all(phase["lost"] == 0 for phase in phases.values())
    assert report["nginx_failed_attempts"] == []
    assert report["traffic"]["flows"]["completed"] > 10 and set(report["traffic"]["flows"]) == {"completed"}
    # Every old pod: left the upstream before TERM, exited 0 without SIGKILL; every new pod is serving.
    old = [pod for pod in report["pods"] if "(old)" in pod["name"]]
    assert len(old) == 2 and len(report["pods"]) == 4
    for pod in old:
        events = pod["events_s"]
        assert events["removed"] < events["term"] < events["exited"] and "sigkill" not in events
        assert pod["exit_code"] == 0
        assert any("Master shutdown 2/2" in line for line in pod["shutdown_log"])
    assert report["reloads_s"][-1][1] == [pod["port"] for pod in report["pods"] if "(new)" in pod["name"]]
    dispenses = report["dispenses"]
    assert dispenses["paid_in_flight"] == report["traffic"]["flows"]["completed"]
    assert dispenses["lost"] == [] and dispenses["double"] == []
    assert all(order["makes"] == 1 for order in dispenses["orders"].values())
    assert "PASS: no request or dispense lost" in output


def test_rollout_without_prestop_fails_naming_the_cause(tmp_path):
    """One pod is enough to show it (and boots half as many): TERM at once, the pod still in the upstream."""
    code, report, output = drill(tmp_path, pods="1", prestop="0", endpoints_lag="1.5")
    assert code == 1, output
    assert report["nginx_failed_attempts"], output
    assert {a["pod_state"] for a in report["nginx_failed_attempts"]} == {"after TERM, still in the upstream"}
    assert any("no preStop: TERM closed the pod's listener while it was still in the upstream" in r for r in
               report["reasons"])  # fmt: skip
    assert "FAIL:" in output
