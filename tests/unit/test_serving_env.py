"""The GUNICORN_* parser: strict base-10, ranges, one warning per bad value, and ``auto`` from cgroups."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffee_payment.serving.cpu import available_cpus, cgroup_cpu_limit
from coffee_payment.serving.env import resolve

DEFAULTS = {
    "GUNICORN_WORKERS": ("workers", 4),
    "GUNICORN_PORT": ("port", 8000),
    "GUNICORN_TIMEOUT": ("timeout", 30),
    "GUNICORN_GRACEFUL_TIMEOUT": ("graceful_timeout", 30),
    "GUNICORN_KEEPALIVE": ("keepalive", 75),
    "GUNICORN_MAX_REQUESTS": ("max_requests", 0),
    "GUNICORN_MAX_REQUESTS_JITTER": ("max_requests_jitter", 0),
}
# Bad for every integer variable: empty, sign, whitespace, quotes, hex, octal-ish prefix, float, exponent,
# non-ASCII digits, words, huge.
BAD_FOR_ALL = [
    "",
    " ",
    "-1",
    "+4",
    " 4",
    "4 ",
    "'4'",
    '"4"',
    "0x10",
    "0o10",
    "0b1",
    "4.0",
    "1e3",
    "٤",
    "four",
    "4_000",
    "99999999999999999999",
]
BAD_FOR_SOME = {
    "GUNICORN_WORKERS": ["0", "513"],
    "GUNICORN_PORT": ["0", "65536"],
    "GUNICORN_TIMEOUT": ["0", "3601"],
    "GUNICORN_GRACEFUL_TIMEOUT": ["0", "3601"],
    "GUNICORN_KEEPALIVE": ["0", "3601"],
    "GUNICORN_MAX_REQUESTS": ["100000001"],
    "GUNICORN_MAX_REQUESTS_JITTER": ["100000001"],
}
BAD_VALUES = [(name, value) for name in DEFAULTS for value in BAD_FOR_ALL + BAD_FOR_SOME[name]]
OTHER_BAD = [
    ("GUNICORN_BIND_HOST", "localhost", "bind_host", "0.0.0.0"),
    ("GUNICORN_BIND_HOST", "", "bind_host", "0.0.0.0"),
    ("GUNICORN_BIND_HOST", "256.0.0.1", "bind_host", "0.0.0.0"),
    ("GUNICORN_FORWARDED_ALLOW_IPS", "", "forwarded_allow_ips", "127.0.0.1,::1"),
    ("GUNICORN_FORWARDED_ALLOW_IPS", "10.0.0.1/8", "forwarded_allow_ips", "127.0.0.1,::1"),
    ("GUNICORN_FORWARDED_ALLOW_IPS", "10.0.0.0/8,,", "forwarded_allow_ips", "127.0.0.1,::1"),
    ("GUNICORN_FORWARDED_ALLOW_IPS", "proxy.local", "forwarded_allow_ips", "127.0.0.1,::1"),
    ("GUNICORN_CONTROL_SOCKET", "relative.sock", "control_socket", None),
    ("GUNICORN_LOG_LEVEL", "verbose", "log_level", "info"),
    ("GUNICORN_ACCESS_LOG", "maybe", "access_log", True),
    ("GUNICORN_ACCESS_LOG", "", "access_log", True),
    ("GUNICORN_PRELOAD", "maybe", "preload", True),
    ("GUNICORN_PRELOAD", "", "preload", True),
]


def _resolve(environ: dict[str, str], tmp_path: Path | None = None):
    warnings: list[str] = []
    config = resolve(
        environ,
        warn=warnings.append,
        cgroup_root=(tmp_path or Path("/nonexistent")),
        proc_self_cgroup=Path("/nonexistent"),
        affinity=2,
    )
    return config, warnings


def test_defaults_without_warnings():
    config, warnings = _resolve({})
    assert warnings == []
    for attribute, default in DEFAULTS.values():
        assert getattr(config, attribute) == default
    assert config.bind == "0.0.0.0:8000"
    assert config.forwarded_allow_ips == "127.0.0.1,::1"
    assert config.control_socket is None
    assert (config.log_level, config.access_log) == ("info", True)
    assert config.preload is True


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_integer_falls_back_with_one_warning(name: str, value: str):
    config, warnings = _resolve({name: value})
    attribute, default = DEFAULTS[name]
    assert getattr(config, attribute) == default
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{name}={value!r} ")
    assert warnings[0].endswith(f"; using {default}")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("name", "value", "attribute", "default"), OTHER_BAD)
def test_other_bad_values_fall_back_with_one_warning(name, value, attribute, default):
    config, warnings = _resolve({name: value})
    assert getattr(config, attribute) == default
    assert len(warnings) == 1 and warnings[0].startswith(f"{name}={value!r} "), warnings


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GUNICORN_WORKERS": "1"}, {"workers": 1}),
        ({"GUNICORN_WORKERS": "512"}, {"workers": 512}),
        ({"GUNICORN_WORKERS": "08"}, {"workers": 8}),
        ({"GUNICORN_PORT": "1"}, {"port": 1}),
        ({"GUNICORN_PORT": "65535"}, {"port": 65535}),
        ({"GUNICORN_TIMEOUT": "10"}, {"timeout": 10, "graceful_timeout": 10}),
        ({"GUNICORN_TIMEOUT": "10", "GUNICORN_GRACEFUL_TIMEOUT": "5"}, {"timeout": 10, "graceful_timeout": 5}),
        (
            {"GUNICORN_MAX_REQUESTS": "50", "GUNICORN_MAX_REQUESTS_JITTER": "10"},
            {"max_requests": 50, "max_requests_jitter": 10},
        ),
        ({"GUNICORN_BIND_HOST": "::1", "GUNICORN_PORT": "9000"}, {"bind": "[::1]:9000"}),
        (
            {"GUNICORN_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 192.168.1.1"},
            {"forwarded_allow_ips": "10.0.0.0/8,192.168.1.1"},
        ),
        ({"GUNICORN_FORWARDED_ALLOW_IPS": "*"}, {"forwarded_allow_ips": "*"}),
        ({"GUNICORN_CONTROL_SOCKET": "/run/g.ctl"}, {"control_socket": "/run/g.ctl"}),
        ({"GUNICORN_CONTROL_SOCKET": ""}, {"control_socket": None}),
        ({"GUNICORN_LOG_LEVEL": "DEBUG", "GUNICORN_ACCESS_LOG": "1"}, {"log_level": "debug", "access_log": True}),
        ({"GUNICORN_PRELOAD": "0"}, {"preload": False}),
        ({"GUNICORN_PRELOAD": "1"}, {"preload": True}),
        ({"GUNICORN_ACCESS_LOG": "yes"}, {"access_log": True}),  # the one boolean dialect (coffee_payment/env.py)
    ],
)
def test_good_values(environ, expected):
    config, warnings = _resolve(environ)
    assert warnings == []
    assert {key: config.as_dict()[key] for key in expected} == expected


def test_web_concurrency_is_ignored_loudly():
    config, warnings = _resolve({"WEB_CONCURRENCY": "7", "GUNICORN_WORKERS": "2"})
    assert config.workers == 2
    assert warnings == ["WEB_CONCURRENCY='7' is ignored; using GUNICORN_WORKERS -> 2"]


def test_gunicorn_cmd_args_is_reported():
    _, warnings = _resolve({"GUNICORN_CMD_ARGS": "--workers 3"})
    assert len(warnings) == 1 and warnings[0].startswith("GUNICORN_CMD_ARGS='--workers 3' overrides")


# --- auto: 2 × CPUs + 1, CPUs from the cgroup quota or the affinity mask ---------------------------------


def _tree(tmp_path: Path, files: dict[str, str], own: str = "0::/\n") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc


@pytest.mark.parametrize(
    ("files", "own", "affinity", "cpus"),
    [
        ({"cpu.max": "max 100000\n"}, "0::/\n", 8, 8),  # v2, no quota → affinity
        ({"cpu.max": "150000 100000\n"}, "0::/\n", 8, 2),  # v2, 1.5 CPUs → ceil 2
        ({"cpu.max": "50000 100000\n"}, "0::/\n", 8, 1),  # v2, half a CPU → at least 1
        ({"cpu.max": "400000 100000\n"}, "0::/\n", 2, 2),  # quota above the affinity mask → mask
        ({"cpu.max": "max 100000\n", "kube/pod/cpu.max": "200000 100000\n"}, "0::/kube/pod\n", 16, 2),
        ({"kube/cpu.max": "100000 100000\n", "kube/pod/cpu.max": "max 100000\n"}, "0::/kube/pod\n", 16, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "4:cpu,cpuacct:/\n", 4, 4),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, "4:cpu,cpuacct:/\n", 8, 3),
        (
            {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"},
            "4:cpu,cpuacct:/docker/x\n",
            8,
            3,
        ),
        ({"cpu.max": "garbage\n"}, "0::/\n", 3, 3),
        ({}, "", 5, 5),  # no cgroup files at all → affinity
    ],
)
def test_available_cpus(tmp_path, files, own, affinity, cpus):
    root, proc = _tree(tmp_path, files, own)
    assert available_cpus(cgroup_root=root, proc_self_cgroup=proc, affinity=affinity) == cpus


def test_auto_workers_from_cgroup_quota(tmp_path):
    root, proc = _tree(tmp_path, {"cpu.max": "150000 100000\n"})
    config = resolve(
        {"GUNICORN_WORKERS": "auto"}, warn=pytest.fail, cgroup_root=root, proc_self_cgroup=proc, affinity=64
    )
    assert config.workers == 5  # 2 × ceil(1.5) + 1, not 2 × 64 + 1


def test_auto_is_case_insensitive_and_uses_affinity_without_quota(tmp_path):
    root, proc = _tree(tmp_path, {})
    config = resolve(
        {"GUNICORN_WORKERS": "AUTO"}, warn=pytest.fail, cgroup_root=root, proc_self_cgroup=proc, affinity=3
    )
    assert config.workers == 7


def test_cgroup_limit_fractional(tmp_path):
    root, proc = _tree(tmp_path, {"cpu.max": "150000 100000\n"})
    assert cgroup_cpu_limit(cgroup_root=root, proc_self_cgroup=proc) == 1.5


def test_this_machine_auto_is_sane():
    assert 1 <= available_cpus() <= 4096
