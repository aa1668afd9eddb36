"""Per-client-address rate limits shared by every worker and pod: a fixed one-minute window counted in the database.

One statement per request — ``INSERT … ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING hits`` (PostgreSQL;
SQLite ≥ 3.35) — so concurrent workers never lose a count, with no cache service to run. A fixed window lets a
client send up to twice the limit across a window boundary; the ingress's own limits (deploy/k8s/base/ingress.yaml)
smooth bursts in front of it. Old windows are deleted now and then by the callers themselves (1 call in 100).
Used by the provider webhooks and ``POST /v1/initiate-payment`` (docs/operations.md "Rate limits").
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from django.db import connection

from coffee_payment.payments.models import RateWindow

WINDOW_S = 60
_CLEANUP_PROBABILITY = 0.01


@dataclass(frozen=True)
class RateDecision:
    """``allowed`` or not; ``hits`` counted in this window (this request included); ``retry_after_s`` until the
    window ends (whole seconds, ≥ 1)."""

    allowed: bool
    hits: int
    retry_after_s: int


def rate_hit(*, scope: str, client: str | None, limit: int, now: float | None = None) -> RateDecision:
    """Count one request of ``client`` (an IP address; None counts as ``unknown``) in ``scope`` and say whether it
    is within ``limit`` per minute. ``limit`` 0 turns the limit off (nothing is counted)."""
    now = time.time() if now is None else now
    window_no = int(now // WINDOW_S)
    retry_after = max(1, int((window_no + 1) * WINDOW_S - now))
    if limit <= 0:
        return RateDecision(True, 0, retry_after)
    table = connection.ops.quote_name(RateWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (scope_key, window_no, hits) VALUES (%s, %s, 1) "  # noqa: S608 - our table name
            f"ON CONFLICT (scope_key, window_no) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits",
            [f"{scope}:{client or 'unknown'}"[:80], window_no],
        )
        hits = int(cursor.fetchone()[0])
    if random.random() < _CLEANUP_PROBABILITY:
        RateWindow.objects.filter(window_no__lt=window_no - 1).delete()
    return RateDecision(hits <= limit, hits, retry_after)
