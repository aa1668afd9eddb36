from django.core.management.base import BaseCommand

from coffee_payment.devices.demo import DEMO_DEVICES, qr_link, seed_demo


class Command(BaseCommand):
    help = "Create the demo merchant and devices (idempotent) and print one QR link per device, one per line."

    def handle(self, *args, **options) -> None:
        seed_demo()
        for demo in DEMO_DEVICES:
            self.stdout.write(qr_link(demo))
