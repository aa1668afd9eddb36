"""Every customer-facing string has a Russian translation (issue 12), and the committed catalog is consistent:
the .po is complete and the committed .mo says exactly what the .po says."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from coffee_payment.devices.models import Device, DeviceStatus, Merchant
from coffee_payment.orders.display import order_reference
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import OrderStatus
from coffee_payment.orders.views import _page_messages

pytestmark = pytest.mark.timeout(60)

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "ru" / "LC_MESSAGES"
# Latin words that are not text to translate: "QR" (as in Russian), QR parameter names shown in error messages.
DATA_WORDS = {"QR", "deviceUuid", "drinkNo", "drinkName", "size", "uuid", "ts", "random", "salt", "tel"}
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


class _VisibleText(HTMLParser):
    """Text a reader sees (no <script>/<style>), plus title and aria-label attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.parts += [value for name, value in attrs if name in ("aria-label", "title") and value]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def untranslated(text: str, *data: str) -> list[str]:
    """Latin words left in ``text`` once the ``data`` values (drink, reference, ...) are taken out."""
    for value in data:
        text = text.replace(value, " ")
    return [word for word in LATIN_WORD.findall(text) if word not in DATA_WORDS]


def visible(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def test_po_is_complete() -> None:
    po = polib.pofile(str(LOCALE / "django.po"))
    assert not po.untranslated_entries(), [e.msgid for e in po.untranslated_entries()]
    assert not po.fuzzy_entries(), [e.msgid for e in po.fuzzy_entries()]


def test_committed_mo_matches_the_po() -> None:
    """The .mo is committed (the image and `serve` need no gettext): it must be the compiled .po
    (`uv run invoke messages` rebuilds both)."""
    po = {_key(e): _translation(e) for e in polib.pofile(str(LOCALE / "django.po")) if _translation(e)}
    mo = {_key(e): _translation(e) for e in polib.mofile(str(LOCALE / "django.mo")) if e.msgid}
    assert mo == po


def _key(entry: polib._BaseEntry) -> tuple:
    return entry.msgctxt, entry.msgid, entry.msgid_plural or None


def _translation(entry: polib._BaseEntry) -> str | tuple:
    """The msgstr, or for a plural entry its forms in order (all four Russian ones)."""
    if entry.msgid_plural:
        return tuple(entry.msgstr_plural[n] for n in sorted(entry.msgstr_plural))
    return entry.msgstr


@pytest.fixture
def order_factory(db):
    merchant = Merchant.objects.create(name="M")
    device = Device.objects.create(
        merchant=merchant,
        device_uuid="dev-i18n",
        tmetr_device_id="tm",
        name="Lobby (YooKassa)",
        location="Холл, второй этаж",
        status=DeviceStatus.TEST,
        payment_scenario="yookassa",
    )

    def make(status: str, expires_in: timedelta = timedelta(minutes=10)) -> Order:
        return Order.objects.create(
            machine_uuid=f"i18n-{status}-{expires_in.total_seconds():.0f}",
            device=device,
            drink_no="d7",
            drink_name="Капучино",
            size=2,
            price_kopecks=15000,
            status=status,
            expires_at=timezone.now() + expires_in,
        )

    return make


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("expired", [False, True])
def test_status_page_and_json_are_all_russian(client: Client, order_factory, status: str, expired: bool) -> None:
    order = order_factory(status, timedelta(minutes=-1) if expired else timedelta(minutes=10))
    page = client.get(f"/v1/order-status-page?order_id={order.id}").content.decode()
    assert untranslated(visible(page), order_reference(order.id)) == []
    body = client.get(f"/v1/order-status/{order.id}").json()
    for key in ("status_text", "next_step", "drink_size"):
        assert untranslated(body[key]) == [], key
    # The texts the page's script shows (Pay again, errors of initiate-payment) are Russian too.
    assert untranslated(" ".join(_page_messages().values())) == []


BAD_LINKS = [
    "/v1/pay",
    "/v1/pay?deviceUuid=dev-i18n&drinkNo=d7&drinkName=X&size=9&uuid=u1",
    "/v1/pay?deviceUuid=dev-i18n&drinkNo=d7&drinkName=X&size=1&uuid=a/b",
    "/v1/pay?deviceUuid=dev-i18n&drinkNo=d7&drinkName=X&size=1&uuid=u1&uuid=u2",
    "/v1/pay?deviceUuid=bad!&drinkNo=d7&drinkName=X&size=1&uuid=u1",
    "/v1/pay?deviceUuid=dev-i18n&drinkNo=d7&drinkName=X&size=1&uuid=u1&salt=has%20space",
    "/v1/pay?deviceUuid=unknown&drinkNo=d7&drinkName=X&size=1&uuid=u1",
    "/v1/order-status-page?order_id=nope",
    "/v1/no-such-page",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", BAD_LINKS)
def test_error_pages_are_all_russian(client: Client, order_factory, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert untranslated(visible(response.content.decode()), "X") == []


@pytest.mark.django_db
def test_expired_rescan_page_is_russian(client: Client, order_factory) -> None:
    order = order_factory(OrderStatus.CREATED, timedelta(minutes=-1))
    response = client.get(
        f"/v1/pay?deviceUuid=dev-i18n&drinkNo=d7&drinkName=X&size=2&uuid={order.machine_uuid}",
    )
    assert response.status_code == 410
    assert untranslated(visible(response.content.decode()), "X") == []


def test_server_error_page_is_russian() -> None:
    assert untranslated(visible(render_to_string("500.html"))) == []


def test_bad_request_page_is_russian() -> None:
    """Django's 400 (a Host outside ALLOWED_HOSTS, a malformed request) renders 400.html: ours, not its English one."""
    assert untranslated(visible(render_to_string("400.html"))) == []


def test_the_check_catches_an_english_string() -> None:
    """The detector itself: an untranslated sentence is reported."""
    assert untranslated(visible("<p>Оплатить</p><p>Waiting for payment</p>")) == ["Waiting", "for", "payment"]
