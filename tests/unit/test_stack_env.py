"""The local stack's environment (devtools/stack.py): WEB_CONCURRENCY never reaches gunicorn, local keys in var/."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from devtools.stack import Stack, StackConfig

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("value", ["abc", "", "3"])
def test_web_concurrency_is_dropped_with_a_warning(monkeypatch, tmp_path, value):
    monkeypatch.setenv("WEB_CONCURRENCY", value)
    stack = Stack(StackConfig(mode="prod", var_dir=tmp_path, port=18000, sandbox_port=18001))
    assert "WEB_CONCURRENCY" not in stack.env
    assert [w for w in stack.warnings if f"WEB_CONCURRENCY={value!r} is not passed to the server" in w]


def test_no_warning_without_web_concurrency(monkeypatch, tmp_path):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert Stack(StackConfig(mode="prod", var_dir=tmp_path, port=18000, sandbox_port=18001)).warnings == []


@pytest.mark.parametrize("mode", ["dev", "prod"])
def test_local_runs_get_one_generated_field_key_in_var(monkeypatch, tmp_path, mode):
    monkeypatch.delenv("FIELD_ENCRYPTION_KEYS", raising=False)
    first = Stack(StackConfig(mode=mode, var_dir=tmp_path, port=18000, sandbox_port=18001))
    again = Stack(StackConfig(mode="prod", var_dir=tmp_path, port=18000, sandbox_port=18001))
    key = first.env["FIELD_ENCRYPTION_KEYS"]
    Fernet(key.encode())  # a valid Fernet key
    assert first.field_key_generated and not again.field_key_generated
    assert again.env["FIELD_ENCRYPTION_KEYS"] == key == (tmp_path / "field_encryption_key").read_text()
    assert (tmp_path / "field_encryption_key").stat().st_mode & 0o777 == 0o600


def test_a_field_key_from_the_environment_wins(monkeypatch, tmp_path):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", key)
    stack = Stack(StackConfig(mode="prod", var_dir=tmp_path, port=18000, sandbox_port=18001))
    assert stack.env["FIELD_ENCRYPTION_KEYS"] == key and not (tmp_path / "field_encryption_key").exists()


def test_var_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    assert StackConfig().var_dir == tmp_path
