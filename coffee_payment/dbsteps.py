"""Sync database steps awaited from async code without a request's thread.

``sync_to_async`` (thread-sensitive, Django's default) runs a step on the request's own thread, and Django
returns that thread's connection to the pool at ``request_finished``. :func:`run_db_step` instead runs one
self-contained step — no transaction or connection state carried to the next step — on the event loop's shared
executor and hands its connection back when the step ends (``CONN_MAX_AGE=0`` and the psycopg pool make that a
return to the pool, not a disconnect). Used by work outside any request (the durable make,
``orders/dispense.py``) and by the status JSON's one read, which then leaves its request without a thread of its
own (``serving/lean.py``).

:func:`run_read` is the choice for a read inside a request: off the request's thread under the lean handler
(which sets :data:`OFF_THREAD_READS`), and on it everywhere else — runserver's WSGI path and Django's test client
run async views from a sync caller, whose thread holds the connection (and, in tests, the transaction) the read
must see.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

T = TypeVar("T")

# True while the lean handler serves a request (serving/lean.py sets it): reads may leave the request's thread.
OFF_THREAD_READS: contextvars.ContextVar[bool] = contextvars.ContextVar("off_thread_reads", default=False)


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
    """A self-contained read (autocommit, one statement or a few, no transaction to share) in a request: through
    :func:`run_db_step` when :data:`OFF_THREAD_READS` is set, else ``sync_to_async(fn)`` on the request's (or the
    sync caller's) thread. Returns ``fn``'s result; its exception propagates."""
    if OFF_THREAD_READS.get():
        return await run_db_step(fn, *args, **kwargs)
    return await sync_to_async(fn)(*args, **kwargs)
