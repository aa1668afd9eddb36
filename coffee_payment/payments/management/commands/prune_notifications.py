from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from coffee_payment.payments.retention import RetentionPolicy, notifications_prune


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "Delete stored provider notifications past their retention: rejected ones after "
        "NOTIFICATION_REJECTED_RETENTION_DAYS, processed ones after NOTIFICATION_RETENTION_DAYS, unresolved ones "
        "(error, retry, never processed) after NOTIFICATION_UNRESOLVED_RETENTION_DAYS (never sooner than processed "
        "ones); never those of an order needing attention. Safe to run concurrently and repeatedly (daily CronJob)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=_positive, default=settings.NOTIFICATION_RETENTION_DAYS)
        parser.add_argument("--rejected-days", type=_positive, default=settings.NOTIFICATION_REJECTED_RETENTION_DAYS)
        parser.add_argument(
            "--unresolved-days", type=_positive, default=settings.NOTIFICATION_UNRESOLVED_RETENTION_DAYS
        )
        parser.add_argument("--batch-size", type=_positive, default=1000, help="rows deleted per statement")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

    def handle(self, *args, days: int, rejected_days: int, unresolved_days: int, batch_size: int, **options) -> None:
        policy = RetentionPolicy(processed_days=days, rejected_days=rejected_days, unresolved_days=unresolved_days)
        counts = notifications_prune(policy=policy, batch_size=batch_size, dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        summary = ", ".join(f"{count} {name}" for name, count in counts.items())
        self.stdout.write(
            f"{verb} {summary} notification(s) (kept: rejected {rejected_days} d, processed {days} d, "
            f"unresolved {max(unresolved_days, days)} d; none of an order needing attention)"
        )
