"""Sync database steps awaited from async code that hand their connection back when they end.

``sync_to_async`` (thread-sensitive, Django's default) runs a step on the request's own thread, and Django returns
that thread's connection to the pool only at ``request_finished``: a request that awaits a provider between two
steps keeps its pooled connection all the while. The steps here return it at once (``CONN_MAX_AGE=0`` and the
psycopg pool make a close a return to the pool, not a disconnect). Each must be self-contained: no transaction or
connection state carried to the next step.

- :func:`run_db_step`: outside any request (the durable make, ``orders/dispense.py``), on the event loop's shared
  executor.
- :func:`run_read`: a read inside a request served by the lean handler, on the request's own thread; the step
  leaves that thread as unused as it found it, so a status poll — one such read — still gets the handler's inline
  request signals (``serving/lean.py``). Outside the lean handler (runserver's WSGI path, Django's test client,
  whose sync caller's thread holds the connection and, in tests, the transaction the read must see) it is a plain
  ``sync_to_async`` call.

A read on the loop's shared executor was measured first and dropped: under the customer flow its few threads
queued polls behind connections held by other requests (status JSON p50 1.4 s against 0.6 s on the request's
thread; docs/performance.md).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

T = TypeVar("T")


class RequestThread(Protocol):
    """What the lean handler lends a request (``serving/lean.py`` ``RequestExecutor``): ``used`` is True once a
    call left state (a connection) on the request's thread that ``request_finished`` must clear there."""

    used: bool


# Set by the lean handler for the request it serves (serving/lean.py); None elsewhere.
REQUEST_THREAD: contextvars.ContextVar[RequestThread | None] = contextvars.ContextVar("request_thread", default=None)


def _closing_connections(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` followed by closing every connection this thread opened (returned to the pool), raised or not."""

    def step(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            for connection in connections.all(initialized_only=True):
                connection.close()

    return step


async def run_db_step(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a thread of the loop's default executor, that thread's database connections
    closed (returned to the pool) afterwards, whether ``fn`` returned or raised; ``fn``'s exception propagates."""

    def step() -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(step, thread_sensitive=False)()


async def run_read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A self-contained read (autocommit, no transaction to share) inside a request: ``fn(*args, **kwargs)`` on
    the request's thread, its connection returned to the pool when it ends under the lean handler (see the module
    docstring). Returns ``fn``'s result; its exception propagates."""
    thread = REQUEST_THREAD.get()
    if thread is None:
        return await sync_to_async(fn)(*args, **kwargs)
    was_used = thread.used
    try:
        return await sync_to_async(_closing_connections(fn))(*args, **kwargs)
    finally:
        thread.used = was_used  # the step closed what it opened: nothing for request_finished to clear there
