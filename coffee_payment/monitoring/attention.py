"""``coffee_orders_needing_attention``: refreshed by each worker on its event loop.

A gauge's value cannot be computed at scrape time across processes (client_python: no ``set_function`` in
multiprocess mode), and the metrics listener runs in the master, which must not open database connections that
its forked workers would inherit. So every worker counts the orders every ``interval`` seconds (one indexed
``COUNT`` per worker) and the gauge keeps the largest live value (``livemax``).
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async

from coffee_payment.monitoring.metrics import ATTENTION_STATUSES, set_orders_needing_attention

logger = logging.getLogger(__name__)


def count_orders_needing_attention() -> int:
    """Orders whose status is one of ``ATTENTION_STATUSES``."""
    from django.db import close_old_connections

    from coffee_payment.orders.models import Order

    try:
        return Order.objects.filter(status__in=ATTENTION_STATUSES).count()
    finally:
        close_old_connections()


async def refresh_forever(interval: float) -> None:
    """Set the gauge now and every ``interval`` seconds. A database error is retried next time; it is logged when
    the refresh starts failing and when it recovers, not every ``interval``."""
    failing = False
    while True:
        try:
            set_orders_needing_attention(await sync_to_async(count_orders_needing_attention)())
        except Exception as exc:  # noqa: BLE001 - a metric must never take the worker down
            if not failing:
                logger.warning("coffee_orders_needing_attention not refreshed (retrying every %gs): %s", interval, exc)
            failing = True
        else:
            if failing:
                logger.info("coffee_orders_needing_attention refreshed again")
            failing = False
        await asyncio.sleep(interval)
