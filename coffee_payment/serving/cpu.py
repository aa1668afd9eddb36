"""How many CPUs this process may really use: the cgroup CPU quota or the affinity mask, not the host's cores.

A container limited to 1.5 CPUs on a 64-core host sees ``os.cpu_count() == 64``; sizing workers from that
oversubscribes the quota and the kernel throttles every worker. The quota lives in cgroup v2 ``cpu.max``
(``"<quota> <period>"`` or ``"max <period>"``) or cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
(quota ``-1`` = unlimited); see the kernel's Documentation/admin-guide/cgroup-v2.rst and
scheduler/sched-bwc.rst.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota_to_cpus(quota: int, period: int) -> float | None:
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _own_cgroup_paths(proc_self_cgroup: Path) -> tuple[str | None, dict[str, str]]:
    """Return (cgroup v2 path, {v1 controller: path}) of this process from ``/proc/self/cgroup``."""
    v2_path: str | None = None
    v1_paths: dict[str, str] = {}
    text = _read(proc_self_cgroup) or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2_path = path
        for controller in controllers.split(","):
            if controller:
                v1_paths[controller] = path
    return v2_path, v1_paths


def _ancestors(root: Path, cgroup_path: str | None) -> list[Path]:
    """Directories from the process's own cgroup up to ``root``: a limit anywhere above also applies."""
    dirs = [root]
    if cgroup_path:
        current = root
        for part in [p for p in cgroup_path.split("/") if p and p != ".."]:
            current = current / part
            dirs.append(current)
    return list(reversed(dirs))


def _v2_limit(root: Path, cgroup_path: str | None) -> float | None:
    limits = []
    for directory in _ancestors(root, cgroup_path):
        fields = (_read(directory / "cpu.max") or "").split()
        if len(fields) == 2 and fields[0] != "max":
            try:
                cpus = _quota_to_cpus(int(fields[0]), int(fields[1]))
            except ValueError:
                cpus = None
            if cpus is not None:
                limits.append(cpus)
    return min(limits) if limits else None


def _v1_limit(root: Path, v1_paths: dict[str, str]) -> float | None:
    limits = []
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        base = root / mount
        for directory in _ancestors(base, v1_paths.get("cpu")):
            quota = _read(directory / "cpu.cfs_quota_us")
            period = _read(directory / "cpu.cfs_period_us")
            if quota is None or period is None:
                continue
            try:
                cpus = _quota_to_cpus(int(quota), int(period))
            except ValueError:
                cpus = None
            if cpus is not None:
                limits.append(cpus)
    return min(limits) if limits else None


def cgroup_cpu_limit(
    *, cgroup_root: Path = DEFAULT_CGROUP_ROOT, proc_self_cgroup: Path = DEFAULT_PROC_SELF_CGROUP
) -> float | None:
    """CPUs allowed by the cgroup CPU quota (fractional, e.g. 1.5), or None when there is no quota.

    cgroup v2 ``cpu.max`` is read first, then cgroup v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``, at the
    process's own cgroup and every ancestor up to ``cgroup_root`` (the smallest quota wins). Both paths are
    parameters so tests can point them at a fake tree.
    """
    v2_path, v1_paths = _own_cgroup_paths(proc_self_cgroup)
    limit = _v2_limit(cgroup_root, v2_path)
    if limit is None:
        limit = _v1_limit(cgroup_root, v1_paths)
    return limit


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``taskset``, cpuset); ``os.cpu_count()`` where unsupported."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_cpus(
    *,
    cgroup_root: Path = DEFAULT_CGROUP_ROOT,
    proc_self_cgroup: Path = DEFAULT_PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> int:
    """Whole CPUs this process can use: ceil(cgroup quota) capped by the affinity mask, at least 1."""
    mask = affinity if affinity is not None else affinity_cpus()
    quota = cgroup_cpu_limit(cgroup_root=cgroup_root, proc_self_cgroup=proc_self_cgroup)
    if quota is None:
        return max(1, mask)
    return max(1, min(mask, math.ceil(quota)))
