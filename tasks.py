"""invoke tasks for the whole lifecycle: ``invoke --list``; ``invoke --help <task>`` for options."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from invoke import Context, Exit, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack, StackConfig  # noqa: E402


@task(
    help={
        "prod": "gunicorn + Uvicorn workers with DEBUG off (as in production) instead of runserver",
        "port": "app port (default 8000)",
        "sandbox_port": "sandbox emulators port (default 8001)",
        "host": "bind address (default 127.0.0.1; 0.0.0.0 to scan from a phone on your network)",
        "auto_pay": "sandbox pays every payment by itself (no checkout click)",
        "latency_ms": "sandbox latency per provider/Tmetr call, milliseconds",
    }
)
def serve(
    c: Context,
    prod: bool = False,
    port: int = 8000,
    sandbox_port: int = 8001,
    host: str = "127.0.0.1",
    auto_pay: bool = False,
    latency_ms: int = 0,
) -> None:
    """Serve the app with the sandbox emulators: migrations and demo data applied, QR links printed. Ctrl-C stops."""
    mode = "prod" if prod else "dev"
    stack = Stack(
        StackConfig(
            mode=mode, host=host, port=port, sandbox_port=sandbox_port, auto_pay=auto_pay, latency_ms=latency_ms
        )
    )
    if stack.secret_generated:
        print(f"Generated a local SECRET_KEY in {stack.config.var_dir / 'secret_key'} (set SECRET_KEY to override).")
    # Ctrl-C (even when started with SIGINT ignored, e.g. from a script's background job) and TERM both stop
    # the stack gracefully.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack.start()
    except (RuntimeError, OSError) as exc:
        raise Exit(f"could not start the stack: {exc}") from exc
    server = "gunicorn + Uvicorn workers (prod mode)" if prod else "Django runserver (dev mode)"
    print(f"\nCoffee Payments Server on {stack.base_url} — {server}; sandbox on {stack.sandbox_url}")
    print("Scan (open) a QR link, press Pay, then Pay in the sandbox checkout:")
    for link in stack.qr_links:
        print(f"  {link}")
    print(f"Admin: {stack.base_url}/admin/ (python manage.py createsuperuser)  ·  Ctrl-C to stop\n", flush=True)
    try:
        code = stack.server.wait()
        raise Exit(f"server exited unexpectedly with code {code}", code=code or 1)
    except KeyboardInterrupt:
        print("\nStopping: server (graceful), then sandbox…", flush=True)
        code = stack.stop(sig=signal.SIGINT)
        print(f"Stopped (server exit code {code}).")
    finally:
        stack.stop()
