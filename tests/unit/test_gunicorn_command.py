"""The toolkit starts gunicorn through its script, as production does (``entrypoint.sh``): started as
``python -m gunicorn``, a USR2 binary upgrade re-executes ``python .../gunicorn/__main__.py``, whose directory
shadows the standard library's ``http`` and kills the new master at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.launch import gunicorn_command

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def test_the_virtualenv_s_gunicorn_script_is_used_not_python_dash_m():
    command = gunicorn_command()
    assert command == [str(Path(sys.executable).with_name("gunicorn"))]
    assert os.access(command[0], os.X_OK)
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "gunicorn" in (done.stdout + done.stderr)


def test_no_toolkit_server_is_started_with_python_dash_m_gunicorn():
    starters = [
        ROOT / "devtools" / "processes.py",
        ROOT / "devtools" / "stack.py",
        *sorted((ROOT / "loadtests").glob("*.py")),
    ]
    offenders = [str(path.relative_to(ROOT)) for path in starters if '"-m", "gunicorn"' in path.read_text()]
    assert offenders == []
