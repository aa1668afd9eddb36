"""Retention of the notification inbox (``manage.py prune_notifications``, a daily CronJob; docs/operations.md
"Inbox retention").

Three classes, each kept its own number of days after ``received_at``:

- ``rejected`` — refused bodies (already stored truncated): ``NOTIFICATION_REJECTED_RETENTION_DAYS`` (7);
- ``processed`` — applied, no change, unknown payment, mismatch: ``NOTIFICATION_RETENTION_DAYS`` (30);
- ``unresolved`` — error, retry, never processed: what staff may still replay from the admin, kept
  ``NOTIFICATION_UNRESOLVED_RETENTION_DAYS`` (180) and never less than the processed ones.

Never deleted, whatever their age: notifications of an order that needs attention (make failed, make outcome
unknown, paid too late) — staff decide on those with the provider's messages in front of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from coffee_payment.orders.state import NEEDS_ATTENTION
from coffee_payment.payments.models import Notification, NotificationVerdict

UNRESOLVED = (NotificationVerdict.ERROR, NotificationVerdict.RETRY, NotificationVerdict.RECEIVED)


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each class is kept (positive integers)."""

    processed_days: int
    rejected_days: int
    unresolved_days: int

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """``received_at`` before which a notification of each class may go; unresolved ones are kept at least as
        long as processed ones."""
        return {
            "rejected": now - timedelta(days=self.rejected_days),
            "processed": now - timedelta(days=self.processed_days),
            "unresolved": now - timedelta(days=max(self.unresolved_days, self.processed_days)),
        }


def _expired(name: str, cutoff: datetime) -> QuerySet[Notification]:
    query = Notification.objects.filter(received_at__lt=cutoff).exclude(attempt__order__status__in=NEEDS_ATTENTION)
    if name == "rejected":
        return query.filter(verdict=NotificationVerdict.REJECTED)
    if name == "unresolved":
        return query.filter(verdict__in=UNRESOLVED)
    return query.exclude(Q(verdict=NotificationVerdict.REJECTED) | Q(verdict__in=UNRESOLVED))


def notifications_prune(
    *, policy: RetentionPolicy, now: datetime | None = None, batch_size: int = 1000, dry_run: bool = False
) -> dict[str, int]:
    """Delete the notifications past their class's retention, ``batch_size`` rows per statement (short locks, no
    long transaction); returns the count per class (what would go, with ``dry_run``)."""
    counts: dict[str, int] = {}
    for name, cutoff in policy.cutoffs(now or timezone.now()).items():
        if dry_run:
            counts[name] = _expired(name, cutoff).count()
            continue
        deleted = 0
        while ids := list(_expired(name, cutoff).order_by("pk").values_list("pk", flat=True)[:batch_size]):
            deleted += Notification.objects.filter(pk__in=ids).delete()[0]
        counts[name] = deleted
    return counts
