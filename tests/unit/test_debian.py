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
