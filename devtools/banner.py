"""The admin line of the ``invoke serve`` banner: suggest creating a login only when no superuser exists."""

from __future__ import annotations

import subprocess

from devtools.stack import run_manage

# One query through the app's own settings and database; prints "yes" or "no".
_CHECK = (
    "from django.contrib.auth import get_user_model; "
    "print('yes' if get_user_model().objects.filter(is_superuser=True, is_active=True).exists() else 'no')"
)


def superuser_exists(env: dict[str, str]) -> bool | None:
    """Whether the app's database (``env`` as for the server) has an active superuser; None when it cannot tell."""
    try:
        answer = run_manage("shell", "--no-startup", "-c", _CHECK, env=env, timeout=60).strip().splitlines()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    return {"yes": True, "no": False}.get(answer[-1] if answer else "")


def admin_line(admin_url: str, env: dict[str, str]) -> str:
    """``Admin: <admin_url>`` plus how to create a login when there is none (or when that cannot be checked)."""
    if superuser_exists(env):
        return f"Admin: {admin_url}"
    return f"Admin: {admin_url} (create a login: python3 -m uv run invoke manage createsuperuser)"
