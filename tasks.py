"""invoke tasks for the whole lifecycle: ``invoke --list``; ``invoke --help <task>`` for options."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from invoke import Context, Exit, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from coffee_payment.serving.admin_url import admin_url_prefix  # noqa: E402
from devtools.banner import admin_line  # noqa: E402
from devtools.drill import DrillOptions  # noqa: E402
from devtools.launch import interrupt_on_stop_signals  # noqa: E402
from devtools.rollout import RolloutOptions  # noqa: E402
from devtools.stack import Stack, StackConfig  # noqa: E402
from devtools.taskhelp import documented_task  # noqa: E402


@documented_task(
    help={
        "prod": "gunicorn + Uvicorn workers with DEBUG off (as in production) instead of runserver",
        "port": "app port",
        "sandbox_port": "sandbox emulators port",
        "host": "bind address (0.0.0.0 to scan from a phone on your network)",
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
    for warning in stack.warnings:
        print(warning, file=sys.stderr)
    if stack.secret_generated:
        print(f"Generated a local SECRET_KEY in {stack.config.var_dir / 'secret_key'} (set SECRET_KEY to override).")
    if stack.field_key_generated:
        print(
            f"Generated a local FIELD_ENCRYPTION_KEYS key in {stack.config.var_dir / 'field_encryption_key'} "
            "(provider secrets are encrypted with it; set FIELD_ENCRYPTION_KEYS to override)."
        )
    interrupt_on_stop_signals()  # Ctrl-C and TERM both stop the stack gracefully
    try:
        stack.start()
    except KeyboardInterrupt:  # Stack.start stops whatever it had started
        print("\nStopped before the server was ready.", flush=True)
        return
    except (RuntimeError, OSError) as exc:
        raise Exit(f"could not start the stack: {exc}") from exc
    except subprocess.CalledProcessError as exc:
        raise Exit(f"could not start the stack: {' '.join(exc.cmd[1:])} failed:\n{exc.stderr or exc.stdout}") from exc
    # From here on the children run: whatever interrupts us (Ctrl-C during the banner's superuser check included)
    # stops them — a Ctrl-C gracefully, anything else at once.
    try:
        _banner(stack, prod=prod, auto_pay=auto_pay)
        code = stack.server.wait()
        raise Exit(f"server exited unexpectedly with code {code}", code=code or 1)
    except KeyboardInterrupt:
        print("\nStopping: server (graceful), then sandbox…", flush=True)
        code = stack.stop(sig=signal.SIGINT)
        print(f"Stopped (server exit code {code}).")
    finally:
        stack.stop()


def _banner(stack: Stack, *, prod: bool, auto_pay: bool = False) -> None:
    server = "gunicorn + Uvicorn workers (prod mode)" if prod else "Django runserver (dev mode)"
    print(f"\nCoffee Payments Server on {stack.base_url} — {server}; sandbox on {stack.sandbox_url}")
    then = "the sandbox pays by itself (--auto-pay)" if auto_pay else "then pay in the sandbox checkout"
    print(f"Scan (open) a QR link, press «Оплатить» (Pay); {then}:")
    for link in stack.qr_links:
        print(f"  {link}")
    admin_prefix = admin_url_prefix(stack.env.get("ADMIN_URL_PREFIX"), warn=lambda *_: None)  # settings warn
    print(admin_line(f"{stack.base_url}/{admin_prefix}/", stack.env), flush=True)
    print("Ctrl-C to stop\n", flush=True)


@task(
    positional=["command"],
    help={"command": 'manage.py command line, quoted, e.g. "createsuperuser" or "check --deploy"'},
)
def manage(c: Context, command: str) -> None:
    """Run a manage.py command with the environment `invoke serve --prod` uses (local keys, var/ database)."""
    import shlex

    env = Stack(StackConfig(mode="prod", port=8000, sandbox_port=8001)).env
    result = subprocess.run([sys.executable, "manage.py", *shlex.split(command)], cwd=ROOT, env=env, check=False)
    if result.returncode:
        raise Exit(code=result.returncode)


@documented_task(
    name="drill-shutdown",
    help={
        "event": "term | int | quit | recycle | kill-worker | hup | k8s",
        "duration": "seconds of steady load (the run also waits for the master to exit after a stop event)",
        "warmup": "seconds of steady load before the event (its baseline); at least 1 s of load follows it",
        "clients": "steady keep-alive clients on the hot paths (status JSON, /health)",
        "inflight": "long requests in flight at the moment of the event",
        "inflight_seconds": "how long each in-flight request takes (GET /_test/sleep), seconds",
        "graceful_timeout": "GUNICORN_GRACEFUL_TIMEOUT of the drill's server, seconds",
        "workers": "GUNICORN_WORKERS of the drill's server",
        "prestop": "k8s event: seconds between the readiness flip and TERM",
        "max_requests": "recycle event: GUNICORN_MAX_REQUESTS of the drill's server (jitter 10)",
        "dispenses": "paid orders whose make command is in flight at the event (0 = none); each must end with one "
        "make or an explicit state",
        "url": "target a running server instead (needs --pid; SERVING_TEST_ENDPOINTS=1 for in-flight requests)",
        "pid": "the running server's gunicorn master pid (with --url)",
        "drain_file": "k8s event with --url: the running server's SERVING_DRAIN_FILE (touched to flip readiness)",
        "json": "write every figure to this JSON file",
    },
)
def drill_shutdown(
    c: Context,
    event: str = DrillOptions.event,
    duration: float = DrillOptions.duration,
    warmup: float = DrillOptions.warmup,
    clients: int = DrillOptions.clients,
    inflight: int = DrillOptions.inflight,
    inflight_seconds: float = DrillOptions.inflight_seconds,
    graceful_timeout: int = DrillOptions.graceful_timeout,
    workers: int = DrillOptions.workers,
    prestop: float = DrillOptions.prestop,
    max_requests: int = DrillOptions.max_requests,
    dispenses: int = DrillOptions.dispenses,
    url: str = "",
    pid: int = 0,
    drain_file: str = "",
    json: str = "",
) -> None:
    """Graceful-shutdown drill: load, an event, every request and paid order accounted; fails if one is lost."""
    from devtools.drill import Drill, render

    options = DrillOptions(
        event=event,
        duration=duration,
        warmup=warmup,
        clients=clients,
        inflight=inflight,
        inflight_seconds=inflight_seconds,
        graceful_timeout=graceful_timeout,
        workers=workers,
        prestop=prestop,
        max_requests=max_requests,
        dispenses=dispenses,
        url=url or None,
        pid=pid or None,
        drain_file=drain_file or None,
        json_path=json or None,
    )
    try:
        drill = Drill(options)
    except ValueError as exc:
        raise Exit(f"drill-shutdown: {exc}", code=2) from exc
    report = drill.run()
    print(render(report))
    if json:
        print(f"JSON report: {json}")
    if not report["passed"]:
        raise Exit(code=1)


@documented_task(
    name="drill-rollout",
    help={
        "pods": "pods (gunicorn masters) behind the nginx ingress, each replaced in turn",
        "workers": "GUNICORN_WORKERS of each pod",
        "customers": "concurrent customers running the buy-a-drink flow through the ingress",
        "probes": "probe clients (GET /health and /readyz, a new connection each)",
        "warmup": "seconds of load before the rollout (the throughput baseline)",
        "cooldown": "seconds of load after the last old pod exited",
        "prestop": "preStop sleep after touching the drain file, seconds (0 = no preStop: a negative control)",
        "endpoints_lag": "seconds from a pod's deletion to its removal from the upstream (longer than --prestop "
        "is a negative control)",
        "grace": "terminationGracePeriodSeconds: SIGKILL this long after the deletion",
        "graceful_timeout": "GUNICORN_GRACEFUL_TIMEOUT of the pods",
        "server_keepalive": "GUNICORN_KEEPALIVE of the pods, seconds (below the ingress's is a negative control)",
        "upstream_keepalive_timeout": "nginx upstream keepalive_timeout, seconds (ingress-nginx: 60)",
        "latency_ms": "sandbox latency per provider/Tmetr call, milliseconds",
        "json": "write every figure to this JSON file",
    },
)
def drill_rollout(
    c: Context,
    pods: int = RolloutOptions.pods,
    workers: int = RolloutOptions.workers,
    customers: int = RolloutOptions.customers,
    probes: int = RolloutOptions.probes,
    warmup: float = RolloutOptions.warmup,
    cooldown: float = RolloutOptions.cooldown,
    prestop: float = RolloutOptions.prestop,
    endpoints_lag: float = RolloutOptions.endpoints_lag,
    grace: float = RolloutOptions.grace,
    graceful_timeout: int = RolloutOptions.graceful_timeout,
    server_keepalive: int = RolloutOptions.server_keepalive,
    upstream_keepalive_timeout: float = RolloutOptions.upstream_keepalive_timeout,
    latency_ms: int = RolloutOptions.latency_ms,
    json: str = "",
) -> None:
    """Rolling-deploy drill: pods behind a real nginx under customer load, each replaced as Kubernetes does.

    Every request and paid order is accounted; the drill fails, naming the cause, when one is lost."""
    from devtools.rollout import Rollout
    from devtools.rollout_report import render as render_rollout

    options = RolloutOptions(
        pods=pods,
        workers=workers,
        customers=customers,
        probes=probes,
        warmup=warmup,
        cooldown=cooldown,
        prestop=prestop,
        endpoints_lag=endpoints_lag,
        grace=grace,
        graceful_timeout=graceful_timeout,
        server_keepalive=server_keepalive,
        upstream_keepalive_timeout=upstream_keepalive_timeout,
        latency_ms=latency_ms,
        json_path=json or None,
    )
    try:
        rollout = Rollout(options)
    except ValueError as exc:
        raise Exit(f"drill-rollout: {exc}", code=2) from exc
    try:
        report = rollout.run()
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise Exit(f"drill-rollout could not run: {exc}", code=2) from exc
    print(render_rollout(report))
    if json:
        print(f"JSON report: {json}")
    if not report["passed"]:
        raise Exit(code=1)


@task
def load(c: Context) -> None:
    """Load suite: runserver vs gunicorn + our Uvicorn worker vs gunicorn's asgi worker, same locust profile, report.

    The runner's own options follow ``--`` (one definition, in loadtests/runner.py):
    ``invoke load -- --users 50 --duration 5``; ``invoke load -- --help`` lists them.
    """
    import shlex

    from loadtests.runner import main as run_load

    code = run_load(shlex.split(c.remainder))
    if code:
        raise Exit(code=code)


@documented_task(
    help={
        "tag": "image tag; none = coffee-payment:latest, the name deploy/k8s/base uses",
        "engine": "docker | podman | buildah; none = the first one found",
    }
)
def image(c: Context, tag: str = "", engine: str | None = None) -> None:
    """Build the container image with whichever engine the machine has (docker, podman, buildah)."""
    from tools.container.image import DEFAULT_TAG, ContainerEngineNotFound, StaleLockFile, build_image

    tag = tag or DEFAULT_TAG
    try:
        build_image(tag, engine)
    except (ContainerEngineNotFound, StaleLockFile) as exc:
        raise Exit(str(exc), code=1) from exc
    except subprocess.CalledProcessError as exc:
        raise Exit(
            f"image build failed ({' '.join(exc.cmd[:2])} exited {exc.returncode}); is the engine's daemon running "
            "(`docker info`)? `nox -s container` starts a private dockerd on machines without one.",
            code=1,
        ) from exc
    print(f"Built {tag}")


@task
def messages(c: Context) -> None:
    """Update locale/ru/LC_MESSAGES/django.po from the code and compile django.mo (needs Debian's gettext).
    Both files are committed: the image and `serve` need no gettext; tests/unit/test_translations.py checks them."""
    import shutil

    if shutil.which("xgettext") is None or shutil.which("msgfmt") is None:
        raise Exit("gettext is missing: apt-get install gettext")
    env = Stack(StackConfig(mode="prod", port=8000, sandbox_port=8001)).env
    skipped = (".venv", ".nox", "tests", "loadtests", "devtools", "var", "staticfiles", "reports")
    ignore = [f"--ignore={name}" for name in skipped]
    for command in (["makemessages", "-l", "ru", "--no-location", *ignore], ["compilemessages", "-l", "ru", *ignore]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)
