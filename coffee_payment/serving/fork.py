"""What must not cross a fork when the master preloads the app (``GUNICORN_PRELOAD=1``, gunicorn ``preload_app``).

The master imports Django once and forks every worker from it, so a recycle costs a fork instead of a full
import and boot. Whatever holds a socket, a thread, an event loop or random state must belong to one worker:

* database connections and the psycopg pool (its connections and worker threads) — closed in the master before
  each fork (:func:`before_fork`); Django opens them lazily in each worker. The master never queries, so this
  only guards against a future import-time query;
* httpx clients — one per event loop, created lazily on the worker's loop
  (``coffee_payment/integrations/http.py``); the master runs no loop;
* event loops — created by uvicorn in the worker;
* ``X-Worker-Pid`` — refreshed at fork (``probes._Pid``, ``os.register_at_fork``);
* random state — CPython reseeds ``random`` in the child (``os.register_at_fork``), and :func:`after_fork`
  reseeds again from ``os.urandom`` so the guarantee does not rest on an implementation detail; ``secrets`` and
  ``uuid4`` read ``os.urandom`` and share nothing.

What every worker would otherwise do lazily on its first request is done once in the master (:func:`warm_up`):
the URL resolver (importing every view module and the admin: ~0.4 s of CPU measured here) and the translation
catalogs. Shared with every worker, it is neither paid per recycle nor on a customer's first request.

``gc.freeze()`` before the fork moves every object the master holds to the permanent generation, so a worker's
garbage collections never write to (and copy) the pages it shares with the master (Python docs, ``gc.freeze``).
"""

from __future__ import annotations

import gc
import random
import sys
from typing import Any


def close_database_connections() -> int:
    """Close every open Django connection and psycopg pool of this process; the number of pools closed.

    No-op when Django's database layer was never imported (``GUNICORN_PRELOAD=0``: the master imports nothing).
    """
    if "django.db" not in sys.modules:
        return 0
    from django.conf import settings
    from django.db import connections

    if not settings.configured:
        return 0
    pools = 0
    for connection in connections.all(initialized_only=True):
        connection.close()
    for alias in connections:
        wrapper = connections[alias]
        if getattr(wrapper, "_connection_pools", {}).get(alias) is not None:
            wrapper.close_pool()
            pools += 1
    return pools


def warm_up() -> bool:
    """Populate the URL resolver and load the translation catalogs of this process (the master, once).

    False, doing nothing, when the preloaded app did not set Django up (e.g. the load suite's bare ASGI app).
    """
    if "django.apps" not in sys.modules:
        return False
    from django.apps import apps

    if not apps.ready:
        return False
    from django.conf import settings
    from django.urls import get_resolver
    from django.utils import translation

    get_resolver().reverse_dict  # noqa: B018 - the property populates the resolver (imports every view)
    translation.activate(settings.LANGUAGE_CODE)
    translation.deactivate()
    return True


_warmed = False


def before_fork(server: Any, worker: Any) -> None:
    """gunicorn ``pre_fork`` (master): nothing fork-unsafe crosses; shared heap pages stay shared."""
    global _warmed
    if server.cfg.preload_app:
        if not _warmed:
            warm_up()
            _warmed = True
        pools = close_database_connections()
        if pools:
            server.log.warning("Closed %d database pool(s) opened in the master before forking a worker", pools)
        gc.freeze()


def after_fork(server: Any, worker: Any) -> None:
    """gunicorn ``post_fork`` (worker): fresh random state for this worker."""
    random.seed()
