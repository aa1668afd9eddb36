"""Environment → gunicorn settings, stricter than gunicorn's own validators.

gunicorn parses integers with base auto-detection (``0x10`` → 16), accepts ``workers = 0`` (listens, never
serves) and crashes with a traceback on an out-of-range port (docs/serving.md §7). Every variable here is read
in the project's one env dialect (``coffee_payment/env.py``: base-10 integers, range-checked; a bad value falls
back to the default with exactly one warning naming the variable, the bad value and the value used), plus the
serving-only shapes below (IP literals, proxy allow-lists, paths, ``auto`` workers). Nothing here raises on input.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from coffee_payment.env import Warn, fallback, parse_bool, parse_choice, parse_int, warn_stderr
from coffee_payment.serving.cpu import DEFAULT_CGROUP_ROOT, DEFAULT_PROC_SELF_CGROUP, available_cpus

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def parse_bind_host(environ: Mapping[str, str], name: str, *, default: str, warn: Warn = warn_stderr) -> str:
    """Read ``name`` as an IPv4/IPv6 address literal (no hostnames: resolution at boot is a failure mode)."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        fallback(name, raw, "is not an IP address", default, warn)
        return default


def parse_allow_ips(environ: Mapping[str, str], name: str, *, default: str, warn: Warn = warn_stderr) -> str:
    """Read ``name`` as ``*`` or a comma-separated list of IP addresses / CIDR networks."""
    raw = environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",")]
    if raw.strip() == "*":
        return "*"
    try:
        if not items or any(not item for item in items):
            raise ValueError("empty item")
        for item in items:
            ipaddress.ip_network(item)  # strict, like gunicorn validate_string_to_addr_list
    except ValueError:
        fallback(name, raw, "is not '*' or a comma-separated list of IPs/CIDRs", default, warn)
        return default
    return ",".join(items)


def parse_path(environ: Mapping[str, str], name: str, *, warn: Warn = warn_stderr) -> str | None:
    """Read ``name`` as an absolute filesystem path; unset or empty → None (feature off)."""
    raw = environ.get(name)
    if not raw:
        return None
    if not raw.startswith("/") or "\x00" in raw:
        fallback(name, raw, "is not an absolute path", "none (disabled)", warn)
        return None
    return raw


def workers_for_cpus(cpus: int) -> int:
    """gunicorn's rule of thumb for the worker count: 2 × CPUs + 1."""
    return 2 * cpus + 1


def parse_workers(
    environ: Mapping[str, str],
    name: str = "GUNICORN_WORKERS",
    *,
    default: int = 4,
    warn: Warn = warn_stderr,
    cgroup_root: Path = DEFAULT_CGROUP_ROOT,
    proc_self_cgroup: Path = DEFAULT_PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> int:
    """Worker count: an integer 1..512, or ``auto`` = 2 × CPUs + 1 with CPUs from the cgroup quota/affinity."""
    raw = environ.get(name)
    if raw is not None and raw.lower() == "auto":
        cpus = available_cpus(cgroup_root=cgroup_root, proc_self_cgroup=proc_self_cgroup, affinity=affinity)
        return workers_for_cpus(cpus)
    return parse_int(environ, name, default=default, minimum=1, maximum=512, warn=warn)


@dataclass(frozen=True)
class ServingConfig:
    """The resolved serving configuration. Times are in seconds; no field is a secret."""

    workers: int
    bind_host: str
    port: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    max_requests: int
    max_requests_jitter: int
    forwarded_allow_ips: str
    control_socket: str | None
    log_level: str
    access_log: bool
    preload: bool = True

    @property
    def bind(self) -> str:
        """gunicorn ``bind`` string; IPv6 literals are bracketed."""
        host = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return f"{host}:{self.port}"

    def as_dict(self) -> dict[str, object]:
        """Plain dict for the one-line start-up log."""
        return {**asdict(self), "bind": self.bind}


def resolve(
    environ: Mapping[str, str],
    *,
    warn: Warn = warn_stderr,
    cgroup_root: Path = DEFAULT_CGROUP_ROOT,
    proc_self_cgroup: Path = DEFAULT_PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> ServingConfig:
    """Resolve every GUNICORN_* variable; see the README's serving table for meanings and defaults.

    Also warns (never silently obeys) about ``WEB_CONCURRENCY``, which gunicorn would use as its worker
    default, and ``GUNICORN_CMD_ARGS``, which gunicorn applies *after* this file (gunicorn/app/base.py
    ``load_config``), so it can override anything here; ``hooks.on_starting`` logs what it overrode.
    """
    timeout = parse_int(environ, "GUNICORN_TIMEOUT", default=30, minimum=1, maximum=3600, warn=warn)
    workers = parse_workers(
        environ, warn=warn, cgroup_root=cgroup_root, proc_self_cgroup=proc_self_cgroup, affinity=affinity
    )
    if "WEB_CONCURRENCY" in environ:
        warn(f"WEB_CONCURRENCY={environ['WEB_CONCURRENCY']!r} is ignored; using GUNICORN_WORKERS -> {workers}")
    if environ.get("GUNICORN_CMD_ARGS"):
        warn(
            f"GUNICORN_CMD_ARGS={environ['GUNICORN_CMD_ARGS']!r} overrides gunicorn.conf.py without its "
            "validation; the effective values are logged at start"
        )
    return ServingConfig(
        workers=workers,
        bind_host=parse_bind_host(environ, "GUNICORN_BIND_HOST", default="0.0.0.0", warn=warn),
        port=parse_int(environ, "GUNICORN_PORT", default=8000, minimum=1, maximum=65535, warn=warn),
        timeout=timeout,
        graceful_timeout=parse_int(
            environ, "GUNICORN_GRACEFUL_TIMEOUT", default=timeout, minimum=1, maximum=3600, warn=warn
        ),
        keepalive=parse_int(environ, "GUNICORN_KEEPALIVE", default=75, minimum=1, maximum=3600, warn=warn),
        max_requests=parse_int(environ, "GUNICORN_MAX_REQUESTS", default=0, minimum=0, maximum=100_000_000, warn=warn),
        max_requests_jitter=parse_int(
            environ, "GUNICORN_MAX_REQUESTS_JITTER", default=0, minimum=0, maximum=100_000_000, warn=warn
        ),
        forwarded_allow_ips=parse_allow_ips(
            environ, "GUNICORN_FORWARDED_ALLOW_IPS", default="127.0.0.1,::1", warn=warn
        ),
        control_socket=parse_path(environ, "GUNICORN_CONTROL_SOCKET", warn=warn),
        log_level=parse_choice(environ, "GUNICORN_LOG_LEVEL", default="info", choices=LOG_LEVELS, warn=warn),
        access_log=parse_bool(environ, "GUNICORN_ACCESS_LOG", default=True, warn=warn),
        preload=parse_bool(environ, "GUNICORN_PRELOAD", default=True, warn=warn),
    )
