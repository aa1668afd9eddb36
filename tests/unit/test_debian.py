"""devtools.debian: what is already there is left alone; a missing package without root is a clear error."""

from __future__ import annotations

import subprocess

import pytest

from devtools import debian


def test_present_binaries_install_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_apt(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"apt-get was called: {args}")

    monkeypatch.setattr(subprocess, "run", no_apt)
    debian.ensure_packages({"sh": "dash", "python3": "python3"})


def test_missing_package_without_root_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    with pytest.raises(PermissionError, match=r"no-such-package-xyz: install them with apt-get \(needs root\)"):
        debian.ensure_packages({"no-such-binary-xyz": "no-such-package-xyz", "sh": "dash"})


def test_each_install_is_announced_before_apt_get_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[list[str], str]] = []

    def fake_apt(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append((command, capsys.readouterr().err))  # what was printed before this apt-get step
        failed = command[1] == "install" and len(calls) == 1  # a fresh machine: no package lists yet
        return subprocess.CompletedProcess(command, 100 if failed else 0)

    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian.subprocess, "run", fake_apt)
    debian.ensure_packages({"no-such-binary-xyz": "chromium", "sh": "dash"})

    assert [command[1] for command, _ in calls] == ["install", "update", "install"]
    assert calls[0][0][-1] == "chromium"
    assert "installing chromium from Debian" in calls[0][1]
    assert "updating Debian's package lists" in calls[1][1]
    assert "installed chromium" in capsys.readouterr().err
