import asyncio

from django.core.management.base import BaseCommand

from coffee_payment.orders.dispense import SweepReport, dispense_sweep


def report_sweep(command: BaseCommand, report: SweepReport) -> None:
    """Print what a sweep did, one line per order, then a summary (shared with ``reconcile_payments``)."""
    for order_id in report.sent:
        command.stdout.write(f"order {order_id}: owed make sent")
    for order_id in report.expired:
        command.stdout.write(f"order {order_id}: owed make past the dispense window → manual_make")
    for order_id in report.unknown:
        command.stdout.write(f"order {order_id}: make outcome unknown → make_unknown (needs attention)")
    command.stdout.write(
        f"swept dispenses: {len(report.sent)} sent, {len(report.expired)} manual_make, {len(report.unknown)} unknown"
    )


class Command(BaseCommand):
    help = (
        "Finish make commands that a dead process left: send owed ones (exactly once across pods), hand those "
        "past the dispense window to staff (manual_make), flag those sent with no recorded outcome (make_unknown). "
        "Also run by reconcile_payments; safe to run concurrently and repeatedly."
    )

    def handle(self, *args, **options) -> None:
        report_sweep(self, asyncio.run(dispense_sweep()))
