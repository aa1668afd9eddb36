"""The probe paths and the lifecycle hooks of deploy/k8s, exercised against a running gunicorn server.

Paths and commands are read from the rendered production overlay, so a manifest edit is tested as shipped.
The kubelet sends probes to the pod IP (``Host: <pod-ip>:<port>``), which is not in ALLOWED_HOSTS.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.stack import Stack, StackConfig
from tests.unit.test_k8s_manifests import rendered, server_container

ROOT = Path(__file__).resolve().parents[2]
POD_HOST = "10.42.0.17:8000"


def probe_paths() -> dict[str, str]:
    container = server_container(rendered("production"))
    return {probe: container[probe]["httpGet"]["path"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")}


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
@pytest.mark.parametrize("probe,path", sorted(probe_paths().items()))
def test_probe_paths_are_served(stack, probe, path):
    response = httpx.get(f"{stack.base_url}{path}", headers={"Host": POD_HOST}, timeout=10)
    assert response.status_code == 200, f"{probe} {path}: {response.status_code} {response.text[:200]}"
    assert response.json() == {"status": "ok"}


@pytest.fixture(scope="module")
def drain_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """A server with SERVING_DRAIN_FILE set, as the ConfigMap sets it (on a temp dir instead of the emptyDir)."""
    var_dir = tmp_path_factory.mktemp("var-k8s-drain")
    drain_file = var_dir / "draining"
    env = {"GUNICORN_WORKERS": "2", "SERVING_DRAIN_FILE": str(drain_file)}
    with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs", seed=False)) as stack:
        yield stack, drain_file


def run_hook(hook: str, stack: Stack) -> None:
    """Run the manifest's exec hook as the kubelet would, in the container's environment (sleep shortened)."""
    command = server_container(rendered("production"))["lifecycle"][hook]["exec"]["command"]
    command = [re.sub(r"\bsleep \d+\b", "sleep 0", part) for part in command]
    subprocess.run(command, env=stack.env, check=True, timeout=10)


def test_prestop_fails_readiness_and_poststart_restores_it(drain_stack):
    stack, drain_file = drain_stack
    readyz = f"{stack.base_url}/readyz"
    assert httpx.get(readyz, headers={"Host": POD_HOST}, timeout=10).status_code == 200
    run_hook("preStop", stack)
    assert drain_file.exists()
    # Every worker reads the same file, so whichever worker answers, it is draining.
    for _ in range(6):
        response = httpx.get(readyz, headers={"Host": POD_HOST}, timeout=10)
        assert (response.status_code, response.json()) == (503, {"status": "draining"})
    for path in ("/livez", "/health"):  # liveness must not restart a draining pod
        assert httpx.get(f"{stack.base_url}{path}", timeout=10).status_code == 200
    run_hook("postStart", stack)  # a container restarted after a liveness failure starts ready again
    assert not drain_file.exists()
    assert httpx.get(readyz, headers={"Host": POD_HOST}, timeout=10).status_code == 200
