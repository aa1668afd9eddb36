"""Sync database steps awaited from async code that hand their connection back when they end.

``sync_to_async`` (thread-sensitive, Django's default) runs a step on the request's own thread, and Django returns
that thread's connection to the pool only at ``request_finished``: a request that awaits a provider between two
steps keeps its pooled connection all the while. The steps here return it at once (``CONN_MAX_AGE=0`` and the
psycopg pool make a close a return to the pool, not a disconnect). Each must be self-contained: no transaction or
connection state carried to the next step.

- :func:`run_db_step`: outside any request (the durable make, ``orders/dispense.py``), on the event loop's default
  executor.
- :func:`run_read`: a read inside a request served by the lean handler, on the process's read executor
  (:data:`READ_THREADS` threads, created as needed), so the request's own thread stays unused and a status poll —
  one such read — gets the handler's inline request signals (``serving/lean.py``). Outside the lean handler
  (runserver's WSGI path, Django's test client, whose sync caller's thread holds the connection and, in tests, the
  transaction the read must see) it is a plain ``sync_to_async`` call.

Measured (docs/performance.md, "Second step"): on the loop's default executor (6 threads on this machine, shared with
``getaddrinfo`` and the make's steps) polls queued behind pool waits under the customer flow; on the request's own
thread the status JSON's wrk ceiling was ~20 % lower than on a dedicated executor of 32 threads, which removed the
queue as well.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from coffee_payment.serving.lean import serving_lean_request

T = TypeVar("T")

# Reads waiting for a pooled connection each hold a thread: enough that they queue in the pool, fairly with the
# other requests, rather than for a thread.
READ_THREADS = 32


@functools.cache
def read_executor() -> ThreadPoolExecutor:
    """The worker process's read executor (created on first use, so never in a preloading master before fork)."""
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="db-read")


def _close_all() -> None:
    """Close every connection this thread opened (a return to the pool), obsolete or not."""
    for connection in connections.all(initialized_only=True):
        connection.close()


def _then(fn: Callable[..., T], release: Callable[[], None]) -> Callable[..., T]:
    """``fn`` followed by ``release()`` on the same thread, whether ``fn`` returned or raised."""

    def step(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            release()

    return step


async def run_db_step(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a thread of the loop's default executor, that thread's database connections
    closed (returned to the pool) afterwards, whether ``fn`` returned or raised; ``fn``'s exception propagates."""

    return await sync_to_async(_then(fn, close_old_connections), thread_sensitive=False)(*args, **kwargs)


async def run_read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A self-contained read (autocommit, no transaction to share) inside a request: ``fn(*args, **kwargs)`` on the
    read executor with its connection returned to the pool when it ends, under the lean handler; elsewhere on the
    caller's thread (see the module docstring). Returns ``fn``'s result; its exception propagates.

    Not for a read that follows the request's own database work on its thread: that thread still holds a pooled
    connection until ``request_finished``, and a read here would need a second one (with the pool's last
    connection so held, it would wait ``DB_POOL_TIMEOUT_S``)."""
    if not serving_lean_request():
        return await sync_to_async(fn)(*args, **kwargs)
    return await sync_to_async(_then(fn, _close_all), thread_sensitive=False, executor=read_executor())(*args, **kwargs)
