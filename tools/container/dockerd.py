"""A private, throwaway Docker daemon for the container test session.

No Docker engine runs on this machine by default, but Debian's ``docker.io`` package ships a dockerd that starts
by hand as root with its own data-root and socket (``dockerd --data-root DIR --exec-root DIR -H unix://SOCK``).
We start it with no bridge and no iptables rules (containers use ``--network host``), so it touches nothing on the host
beyond its temporary directory, and remove everything it made when we stop it.

    with PrivateDockerd() as daemon:
        subprocess.run(["docker", "ps"], env=daemon.env)

CLI for manual use:  python -m tools.container.dockerd start   (prints the directory and DOCKER_HOST)
                     python -m tools.container.dockerd stop DIR
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

from devtools.debian import ensure_packages


class DockerdError(RuntimeError):
    pass


def ensure_installed() -> None:
    """Install Debian's docker.io (dockerd, containerd, runc, the docker CLI) when dockerd is missing."""
    try:
        ensure_packages({"dockerd": "docker.io", "docker": "docker.io"})
    except PermissionError as exc:
        raise DockerdError(str(exc)) from None


class PrivateDockerd:
    """dockerd with its own data-root, exec-root and socket in a temporary directory."""

    def __init__(self, root: str | os.PathLike[str] | None = None, start_timeout: float = 60.0) -> None:
        self.root = Path(root) if root else None
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    # Paths ---------------------------------------------------------------------------------------------
    @property
    def socket(self) -> Path:
        assert self.root is not None
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker CLI calls: this daemon, the legacy builder."""
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_CONFIG")}
        env.update(DOCKER_HOST=self.host, DOCKER_BUILDKIT="0", DOCKER_CONFIG=str(self.root / "client"))
        return env

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "dockerd.log"

    # Lifecycle -----------------------------------------------------------------------------------------
    def start(self, manual: bool = False) -> Self:
        if os.geteuid() != 0:
            raise DockerdError("a private dockerd needs root")
        ensure_installed()
        if self.root is None:
            # Short path: the socket path must fit in sun_path (108 bytes).
            self.root = Path(tempfile.mkdtemp(prefix="coffee-dockerd-", dir="/tmp"))
        (self.root / "client").mkdir(parents=True, exist_ok=True)
        (self.root / "owner").write_text("manual\n" if manual else f"{os.getpid()}\n")
        config = self.root / "daemon.json"
        config.write_text("{}\n")  # ignore the host's /etc/docker/daemon.json
        cmd = [
            "dockerd",
            f"--config-file={config}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'docker.pid'}",
            f"-H={self.host}",
        ]
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C in the terminal must not kill it before we clean up.
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DockerdError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists() and self.docker("version", check=False, capture=True).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise DockerdError(f"dockerd did not answer within {self.start_timeout}s:\n{self.log_tail()}")

    def docker(
        self, *args: str, check: bool = True, capture: bool = False, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=self.env, check=check, capture_output=capture, text=True, timeout=timeout
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no dockerd log)"

    def stop(self) -> None:
        """Remove every container, stop the daemon, unmount and delete its directory. Never raises."""
        if self.root is None:
            return
        pid = self._pid()
        if pid and _alive(pid):
            try:
                ids = self.docker("ps", "-aq", check=False, capture=True, timeout=30).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False, capture=True, timeout=60)
            except (OSError, subprocess.SubprocessError):
                pass
            _terminate(pid, grace=20.0)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # A daemon killed hard leaves its managed containerd and overlay/shm mounts behind.
        _kill_processes_using(self.root)
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def _pid(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        try:
            return int((self.root / "docker.pid").read_text().strip())
        except (OSError, ValueError, TypeError):
            return None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reap_stale(parent: str = "/tmp") -> list[Path]:
    """Clean up after private daemons whose test run died hard: the process that started the daemon (recorded
    in ``owner``) is gone. Daemons started with the CLI (owner ``manual``) are left alone."""
    reaped = []
    for root in Path(parent).glob("coffee-dockerd-*"):
        try:
            owner = (root / "owner").read_text().strip()
        except OSError:
            owner = ""
        if owner == "manual" or (owner.isdigit() and _alive(int(owner))):
            continue
        PrivateDockerd(root).stop()
        reaped.append(root)
    return reaped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _terminate(pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_processes_using(root: Path) -> None:
    """SIGKILL the dockerd/containerd/shim processes whose command line names ``root``."""
    needle = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if needle in b"\0".join(argv) and os.path.basename(argv[0]).startswith((b"dockerd", b"containerd")):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def _unmount_below(root: Path) -> None:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        # Field 5 is the mount point (octal escapes for spaces, which our paths do not contain).
        points = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        daemon = PrivateDockerd(argv[1] if len(argv) > 1 else None).start(manual=True)
        # The Popen object dies with us, the daemon does not (own session).
        print(f"{daemon.root}\nexport DOCKER_HOST={daemon.host} DOCKER_BUILDKIT=0")
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        PrivateDockerd(argv[1]).stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
