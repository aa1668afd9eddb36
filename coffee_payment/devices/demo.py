"""Demo data pointing at the sandbox: one merchant, one device per provider (the TBank one in ``test`` status)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from coffee_payment.devices.models import Device, DeviceStatus, Merchant, ProviderAccount
from coffee_payment.sandbox import defaults as sandbox

DEMO_MERCHANT = "Demo Coffee Merchant"


@dataclass(frozen=True)
class DemoDevice:
    device_uuid: str
    tmetr_device_id: str
    name: str
    scenario: str
    status: str
    drink_no: str
    drink_name: str


DEMO_DEVICES = (
    DemoDevice(
        "3f0c2a9e-5b1d-4c8e-9a77-0d6f2b1e4c55",
        "demo-yookassa-1",
        "Lobby machine (YooKassa)",
        "yookassa",
        DeviceStatus.ACTIVE,
        "7c9e6679f4254a0b8d1e2f3a4b5c6d7e",
        "Капучино",
    ),
    DemoDevice(
        "8a1d4b2c-6e3f-4a5b-9c7d-1e2f3a4b5c6d",
        "demo-tbank-1",
        "Office machine (TBank)",
        "tbank",
        DeviceStatus.TEST,
        "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6",
        "Латте",
    ),
)


def seed_demo() -> list[Device]:
    """Create or update the demo merchant, its sandbox provider accounts and devices (idempotent)."""
    with transaction.atomic():
        merchant, _ = Merchant.objects.get_or_create(name=DEMO_MERCHANT)
        ProviderAccount.objects.update_or_create(
            merchant=merchant,
            provider="yookassa",
            defaults={"account_id": sandbox.YOOKASSA_SHOP_ID, "secret": sandbox.YOOKASSA_SECRET_KEY},
        )
        ProviderAccount.objects.update_or_create(
            merchant=merchant,
            provider="tbank",
            defaults={"account_id": sandbox.TBANK_TERMINAL_KEY, "secret": sandbox.TBANK_PASSWORD},
        )
        devices = []
        for demo in DEMO_DEVICES:
            device, _ = Device.objects.update_or_create(
                device_uuid=demo.device_uuid,
                defaults={
                    "merchant": merchant,
                    "tmetr_device_id": demo.tmetr_device_id,
                    "name": demo.name,
                    "status": demo.status,
                    "payment_scenario": demo.scenario,
                    "location": "Sandbox",
                    "help_line": "+7 800 000-00-00",
                },
            )
            devices.append(device)
        return devices


def qr_link(demo: DemoDevice, *, size: int = 1, machine_uuid: str | None = None) -> str:
    """An absolute QR link for a demo device, with a fresh machine order ``uuid`` unless one is given."""
    machine_uuid = machine_uuid or timezone.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(6)
    query = urlencode(
        {
            "deviceUuid": demo.device_uuid,
            "drinkNo": demo.drink_no,
            "size": size,
            "random": secrets.token_hex(3),
            "ts": int(timezone.now().timestamp()),
            "salt": secrets.token_hex(16),
            "drinkName": demo.drink_name,
            "uuid": machine_uuid,
        }
    )
    return f"{settings.BASE_URL}/v1/pay?{query}"
