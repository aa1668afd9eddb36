"""Run the sandbox: ``python -m coffee_payment.sandbox --host 127.0.0.1 --port 8001 --webhook-base URL``.

Each flag falls back to an environment variable (SANDBOX_HOST, SANDBOX_PORT, SANDBOX_WEBHOOK_BASE,
SANDBOX_LATENCY_MS, SANDBOX_AUTO_PAY). One process, uvicorn, log level warning, no access log;
SIGINT/SIGTERM shut it down gracefully with exit code 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

import uvicorn

from coffee_payment.sandbox import defaults
from coffee_payment.sandbox.app import create_app
from coffee_payment.sandbox.config import DEFAULT_WEBHOOK_BASE, ConfigError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with environment variables as defaults."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m coffee_payment.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=env.get("SANDBOX_HOST", defaults.DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(env.get("SANDBOX_PORT", defaults.DEFAULT_PORT)))
    parser.add_argument(
        "--webhook-base",
        default=env.get("SANDBOX_WEBHOOK_BASE", DEFAULT_WEBHOOK_BASE),
        help="origin of our server; YooKassa notifications go to <base>/v1/yook-pay-webhook",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=float(env.get("SANDBOX_LATENCY_MS", "0")),
        help="delay before every provider/Tmetr API answer",
    )
    parser.add_argument(
        "--auto-pay",
        action=argparse.BooleanOptionalAction,
        default=env.get("SANDBOX_AUTO_PAY", "").strip().lower() in TRUE_WORDS,
        help="pay every new payment automatically (load tests)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; return the exit code."""
    args = parse_args(argv)
    try:
        app = create_app({"webhook_base": args.webhook_base, "latency_ms": args.latency_ms, "auto_pay": args.auto_pay})
    except ConfigError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2
    # uvicorn re-raises the captured signal after its graceful shutdown (so the default handlers would turn it
    # into KeyboardInterrupt / death by SIGTERM); with these no-op handlers installed first, that re-raise
    # is harmless and the process exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # A request held by a "timeout" fault must not keep a stopping process alive for 30 s.
            timeout_graceful_shutdown=3,
        )
    )
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
