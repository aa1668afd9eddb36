"""Debian packages the toolkit needs at run time (chromium, wrk, docker.io, debootstrap), installed on demand.

Standard library only: the noxfile imports it before any session virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping


def ensure_packages(packages: Mapping[str, str]) -> None:
    """Install the Debian packages whose binary is not on PATH; ``packages`` maps binary → package.

    ``apt-get install`` first; only if that fails (a fresh machine has no package lists) ``apt-get update`` and
    once more. A line on stderr announces each step ("installing chromium from Debian…"); apt-get's own output
    goes to stderr too. Raises PermissionError naming the packages when something is missing and
    this is not root, CalledProcessError when apt-get fails.
    """
    missing = sorted({package for binary, package in packages.items() if shutil.which(binary) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"missing Debian package(s) {', '.join(missing)}: install them with apt-get (needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    names = ", ".join(missing)
    print(f"installing {names} from Debian (apt-get install)…", file=sys.stderr, flush=True)
    if subprocess.run(install, env=env, stdout=sys.stderr, check=False).returncode != 0:
        print(f"updating Debian's package lists (apt-get update), then installing {names} again…", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=sys.stderr, check=True)
        subprocess.run(install, env=env, stdout=sys.stderr, check=True)
    print(f"installed {names}", file=sys.stderr, flush=True)
