import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from coffee_payment.orders.dispense import dispense_sweep
from coffee_payment.orders.management.commands.sweep_dispenses import report_sweep
from coffee_payment.payments.providers.base import ProviderError
from coffee_payment.payments.services import attempts_to_reconcile, payment_refresh

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Poll the providers for payment attempts stuck in pending (missed notifications) and apply their status, "
        "then sweep dispenses (owed makes sent, unknown outcomes flagged). Safe to run concurrently and "
        "repeatedly (Kubernetes CronJob)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--min-age",
            type=int,
            default=settings.RECONCILE_MIN_AGE_S,
            help="only attempts older than this many seconds (default RECONCILE_MIN_AGE_S)",
        )

    def handle(self, *args, min_age: int, **options) -> None:
        failures = asyncio.run(self._run(min_age))
        # After the polls: a poll that settled a payment may have owed a make its own send finished already.
        report_sweep(self, asyncio.run(dispense_sweep()))
        if failures:
            # Non-zero exit so a Kubernetes Job failure alert fires; the next run retries them.
            raise CommandError(f"{failures} attempt(s) could not be polled; they will be retried next run")

    async def _run(self, min_age: int) -> int:
        attempt_ids = await sync_to_async(attempts_to_reconcile)(min_age_s=min_age)
        failures = 0
        for attempt_id in attempt_ids:
            try:
                result = await payment_refresh(attempt_id=attempt_id)
            except ProviderError as exc:
                failures += 1
                self.stderr.write(f"attempt {attempt_id}: {exc.detail}")
                continue
            except Exception as exc:  # noqa: BLE001 - one attempt (a merchant's undecryptable secret, a database
                # timeout, a bug) must not stop the others' polls nor the dispense sweep that follows
                failures += 1
                logger.exception("reconcile of attempt %s failed", attempt_id)
                self.stderr.write(f"attempt {attempt_id}: {type(exc).__name__}: {exc}")
                continue
            self.stdout.write(f"attempt {attempt_id}: {result.reason} → order {result.order_id} {result.order_status}")
        self.stdout.write(f"reconciled {len(attempt_ids) - failures}/{len(attempt_ids)} pending attempt(s)")
        return failures
