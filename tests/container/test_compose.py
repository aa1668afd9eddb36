"""docker-compose.yml (development): structure checks; no compose engine runs here."""

from __future__ import annotations

import pytest
import yaml

from tools.container.image import REPO


@pytest.mark.timeout(10)
def test_compose_development_stack() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    web, db = compose["services"]["web"], compose["services"]["db"]
    assert web["build"] == "."
    assert web["environment"]["RUN_MODE"] == "development"
    assert (
        web["environment"]["DATABASE_URL"].startswith("postgres://")
        and "@db:5432/" in web["environment"]["DATABASE_URL"]
    )
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert any(str(p).endswith(":8000") for p in web["ports"])
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
