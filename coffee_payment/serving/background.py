"""Work that must outlive the request that started it, and that the worker's graceful drain waits for.

A task started with :func:`start` runs on the worker's event loop in an empty context (not the request's:
Django tears the request's thread executor down when the request ends, and a cancelled view must not cancel
it). ``ServingServer.shutdown`` (``serving/worker.py``) calls :func:`drain` after the in-flight requests, within
the same drain budget, so TERM, INT, a ``max_requests`` recycle and HUP all wait for it. No Django imports here:
the worker class imports this module before Django is set up.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_in_flight: set[asyncio.Task[Any]] = set()


def start(
    coro: Coroutine[Any, Any, T], *, name: str, carry: tuple[contextvars.ContextVar[Any], ...] = ()
) -> asyncio.Task[T]:
    """Run ``coro`` as a registered background task on the running loop; ``name`` appears in error logs.

    The task gets a fresh context holding only the ``carry`` variables' current values (e.g. the request id,
    so its log lines and outbound calls stay traceable to the request that started it). Raises RuntimeError
    without a running loop."""
    context = contextvars.Context()
    for variable in carry:
        context.run(variable.set, variable.get())
    task = asyncio.get_running_loop().create_task(coro, name=name, context=context)
    _in_flight.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _in_flight.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())


def in_flight() -> int:
    """Registered tasks still running in this process."""
    return len(_in_flight)


async def drain(timeout: float) -> int:
    """Wait up to ``timeout`` seconds for every registered task; returns how many are still running."""
    pending = set(_in_flight)
    if not pending:
        return 0
    _done, still = await asyncio.wait(pending, timeout=max(0.0, timeout))
    return len(still)
