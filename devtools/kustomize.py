"""Render the kustomize overlays in ``deploy/k8s`` in Python, so the tests need neither a cluster nor kubectl.

Only the subset of kustomize this project uses is implemented, and anything else is refused (so a new feature
in a kustomization fails loudly here instead of rendering differently from ``kubectl kustomize``):

* ``resources`` — files or directories holding a ``kustomization.yaml``;
* ``namespace`` — set on every namespaced object;
* ``images`` — ``name`` → ``newName`` / ``newTag`` / ``digest`` on every container of a workload;
* ``patches`` — strategic-merge patch files (``path``, optional ``target`` with ``kind``/``name``).

The strategic merge follows the Kubernetes rules for the lists the overlays touch: containers, env, volumes
(merge key ``name``), volumeMounts (``mountPath``), ports (``containerPort``); every other list is replaced and
a ``null`` value deletes the key (kubernetes/apimachinery ``strategicpatch``). When ``kubectl`` is installed the
tests compare this renderer's output with ``kubectl kustomize``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def load_documents(path: Path) -> list[Manifest]:
    """Every non-empty YAML document in ``path``."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def _merge_list(base: list[Any], patch: list[Any], key: str) -> list[Any]:
    if not all(isinstance(item, dict) and key in item for item in [*base, *patch]):
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(item) for item in base]
    for item in patch:
        index = next((i for i, existing in enumerate(merged) if existing[key] == item[key]), None)
        if index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = strategic_merge(merged[index], item)
    return merged


def strategic_merge(base: Any, patch: Any) -> Any:
    """Merge ``patch`` into a copy of ``base`` (strategic-merge semantics for the lists in MERGE_KEYS)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(base)
    for name, value in patch.items():
        if name.startswith("$"):
            raise ValueError(f"strategic-merge directive {name!r} is not supported by this renderer")
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, list) and isinstance(merged.get(name), list) and name in MERGE_KEYS:
            merged[name] = _merge_list(merged[name], value, MERGE_KEYS[name])
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = strategic_merge(merged[name], value)
        else:
            merged[name] = copy.deepcopy(value)
    return merged


def _matches(resource: Manifest, target: dict[str, str]) -> bool:
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise ValueError(f"patch target fields {sorted(unknown)} are not supported by this renderer")
    return all(
        resource.get("kind") == target["kind"] if field == "kind" else resource["metadata"].get("name") == target[field]
        for field in target
    )


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


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def _set_images(resources: list[Manifest], images: list[dict[str, str]]) -> None:
    for entry in images:
        unknown = set(entry) - {"name", "newName", "newTag", "digest"}
        if unknown:
            raise ValueError(f"images fields {sorted(unknown)} are not supported by this renderer")
        for resource in resources:
            for container in containers(resource):
                if _image_name(container.get("image", "")) != entry["name"]:
                    continue
                image = entry.get("newName", entry["name"])
                if "digest" in entry:
                    image += "@" + entry["digest"]
                elif "newTag" in entry:
                    image += ":" + str(entry["newTag"])
                elif ":" in container["image"].rsplit("/", 1)[-1]:
                    image += ":" + container["image"].rsplit(":", 1)[1]
                container["image"] = image


def render(directory: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize directory`` would produce (order aside). Raises ValueError on features
    this renderer does not implement, on duplicate objects and on patches that match nothing."""
    kustomization = load_documents(directory / "kustomization.yaml")[0]
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise ValueError(f"{directory}: kustomization fields {sorted(unknown)} are not supported by this renderer")
    resources: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        resources += render(path) if path.is_dir() else load_documents(path)
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        identity = (resource["kind"], resource["metadata"]["name"])
        if identity in seen:
            raise ValueError(f"{directory}: duplicate {identity[0]}/{identity[1]}")
        seen.add(identity)
    for patch_entry in kustomization.get("patches", []):
        unknown = set(patch_entry) - {"path", "target"}
        if unknown:
            raise ValueError(f"{directory}: patch fields {sorted(unknown)} are not supported by this renderer")
        for patch in load_documents(directory / patch_entry["path"]):
            target = patch_entry.get("target") or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
            matched = [i for i, resource in enumerate(resources) if _matches(resource, target)]
            if not matched:
                raise ValueError(f"{directory}: patch {patch_entry['path']} matches no object ({target})")
            for index in matched:
                body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
                body["metadata"] = {k: v for k, v in body.get("metadata", {}).items() if k != "name"}
                resources[index] = strategic_merge(resources[index], body)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED_KINDS:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    _set_images(resources, kustomization.get("images", []))
    return resources
