"""Build the project's image with whichever engine this machine has; keep requirements.lock in step with uv.lock.

``invoke image`` calls :func:`build_image`.  CLI:  python -m tools.container.image [--tag TAG] [--engine NAME]
                                                   python -m tools.container.image --update-lock
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO / "requirements.lock"
# The Dockerfile installs this with `pip install --require-hashes`; --no-emit-project: the project is copied,
# not installed ([tool.uv] package = false).
EXPORT_COMMAND = ("uv", "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "requirements-txt")
ENGINES = ("docker", "podman", "buildah")


class ContainerEngineNotFound(RuntimeError):
    """None of docker, podman or buildah is installed (or the one asked for is not)."""


DEFAULT_TAG = "coffee-payment:latest"  # the image name deploy/k8s/base uses (overlays set registry and tag)


class StaleLockFile(RuntimeError):
    """requirements.lock differs from a fresh export of uv.lock."""


def export_lock() -> str:
    """requirements.lock as it should be: uv.lock's runtime dependencies with hashes."""
    if not shutil.which("uv"):
        raise RuntimeError("uv is not on PATH: it exports requirements.lock from uv.lock")
    return subprocess.run(EXPORT_COMMAND, cwd=REPO, check=True, capture_output=True, text=True).stdout


def update_lock() -> bool:
    """Rewrite requirements.lock from uv.lock; True if it changed."""
    fresh = export_lock()
    if LOCK_FILE.exists() and LOCK_FILE.read_text() == fresh:
        return False
    LOCK_FILE.write_text(fresh)
    return True


def find_engine(engine: str | None = None) -> tuple[str, str]:
    """(name, path) of the engine to use: ``engine`` if given, else the first of docker, podman, buildah."""
    candidates = (engine,) if engine else ENGINES
    for name in candidates:
        path = shutil.which(name)
        if path:
            return name, path
    if engine:
        raise ContainerEngineNotFound(f"container engine {engine!r} is not on PATH")
    raise ContainerEngineNotFound(
        "no container engine found: install one of docker, podman or buildah "
        "(e.g. `apt-get install docker.io` or `apt-get install podman`) and run this again"
    )


def build_command(name: str, path: str, tag: str, *extra: str) -> list[str]:
    # buildah's subcommand is `bud` (build-using-dockerfile); `buildah build` only exists from 1.23 on.
    sub = "bud" if name == "buildah" else "build"
    return [path, sub, "--tag", tag, "--file", str(REPO / "Dockerfile"), *extra, str(REPO)]


def build_image(tag: str, engine: str | None = None, *, extra_args: tuple[str, ...] = ()) -> None:
    """Build the image from the repository's Dockerfile as ``tag``.

    Raises ContainerEngineNotFound when no engine is installed, StaleLockFile when requirements.lock no longer
    matches uv.lock (when uv is available to tell), CalledProcessError when the build fails.
    """
    name, path = find_engine(engine)
    if shutil.which("uv") and LOCK_FILE.read_text() != export_lock():
        raise StaleLockFile(
            "requirements.lock does not match uv.lock: run `python -m tools.container.image --update-lock`"
        )
    print(f"building {tag} with {name}", file=sys.stderr)
    subprocess.run(build_command(name, path, tag, *extra_args), check=True, env=os.environ.copy())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--update-lock", action="store_true", help="rewrite requirements.lock from uv.lock")
    args = parser.parse_args(argv)
    try:
        if args.update_lock:
            print("requirements.lock " + ("updated" if update_lock() else "already up to date"))
            return 0
        build_image(args.tag, args.engine)
    except (ContainerEngineNotFound, StaleLockFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: the image build failed ({exc.returncode})", file=sys.stderr)
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
