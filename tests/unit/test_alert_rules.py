"""deploy/k8s/monitoring and deploy/grafana checked offline: the alert rules with ``promtool check rules`` and
``promtool test rules`` (tests/unit/alert_rules_test.yml), and every metric the rules and the dashboard use is
one the server exports (coffee_payment/monitoring/metrics.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from coffee_payment.monitoring import metrics
from devtools.debian import ensure_packages

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "k8s" / "monitoring"
DASHBOARD = ROOT / "deploy" / "grafana" / "coffee-payment.json"
RULES_TEST = Path(__file__).parent / "alert_rules_test.yml"
_SUFFIXES = ("_bucket", "_count", "_sum")


def exported_names() -> set[str]:
    """Every sample name family the server exports, without histogram suffixes."""
    names = {metrics.WORKER_MEMORY_NAME}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def used_names(text: str) -> set[str]:
    found = set(re.findall(r"\bcoffee_[a-z_]+", text))
    return {next((n[: -len(s)] for s in _SUFFIXES if n.endswith(s)), n) for n in found}


def rule_spec() -> dict:
    return yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())["spec"]


@pytest.fixture(scope="module")
def promtool() -> str:
    ensure_packages({"promtool": "prometheus"})  # Debian's `prometheus` package ships promtool
    path = shutil.which("promtool")
    assert path
    return path


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_spec(), sort_keys=False))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    return tmp_path


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.timeout(120)
def test_promtool_check_rules(promtool, rules_dir):
    done = _run([promtool, "check", "rules", "rules.yml"], rules_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.timeout(120)
def test_promtool_test_rules(promtool, rules_dir):
    done = _run([promtool, "test", "rules", RULES_TEST.name], rules_dir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test():
    alerts = {rule["alert"] for group in rule_spec()["groups"] for rule in group["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert alerts - tested <= {"CoffeeNotificationsRetrying", "CoffeeNotificationsRejected"}, alerts - tested


def test_rules_and_dashboard_use_only_exported_metrics():
    exported = exported_names()
    assert "coffee_http_requests_total" in exported and "coffee_http_request_duration_seconds" in exported
    rules = [rule["expr"] for group in rule_spec()["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    for source, exprs in (("alert rules", rules), ("dashboard", queries)):
        unknown = used_names(" ".join(exprs)) - exported
        assert unknown == set(), f"the {source} use metrics the server does not export: {sorted(unknown)}"


def test_dashboard_has_the_designs_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in dashboard["panels"]
        if "targets" in panel
    }
    wanted = {
        "coffee_workers",
        "coffee_worker_restarts_total",
        "coffee_http_request_duration_seconds",
        "coffee_worker_resident_memory_bytes",
        "coffee_worker_drain_seconds",
        "coffee_payments_total",
        "coffee_dispenses_total",
        "coffee_notifications_total",
    }
    assert wanted <= used_names(" ".join(exprs.values())), wanted - used_names(" ".join(exprs.values()))
    assert "histogram_quantile" in " ".join(exprs.values())
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_podmonitor_scrapes_the_metrics_port_the_networkpolicy_admits():
    podmonitor = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())
    (endpoint,) = podmonitor["spec"]["podMetricsEndpoints"]
    deployment = yaml.safe_load((ROOT / "deploy/k8s/base/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    config = yaml.safe_load((ROOT / "deploy/k8s/base/configmap.yaml").read_text())["data"]
    assert endpoint["port"] == "metrics" and ports["metrics"] == int(config["METRICS_PORT"]) != ports["http"]
    assert podmonitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    policy = yaml.safe_load((ROOT / "deploy/k8s/base/networkpolicy.yaml").read_text())
    metrics_rules = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} == {"metrics"}]
    assert len(metrics_rules) == 1 and metrics_rules[0]["from"][0]["podSelector"], "only the scraper, by pod"
    assert all(
        "metrics" not in {p["port"] for p in r["ports"]} for r in policy["spec"]["ingress"] if r not in metrics_rules
    )
    service = yaml.safe_load((ROOT / "deploy/k8s/base/service.yaml").read_text())
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"], "the metrics port is not in the Service"
