"""The admin speaks Russian to Russian staff (issue 15): model, field and choice names, help texts, messages, and the
count under each list in Russian plural forms ("0 заказов, требующих внимания", not "0 заказы, …")."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import translation

from coffee_payment.devices.models import ProviderAccount
from coffee_payment.orders.models import Order, OrderNeedingAttention
from coffee_payment.orders.templatetags.admin_counts import result_count
from coffee_payment.payments.models import Notification, PaymentAttempt
from tests.unit.factories import make_attempt, make_order
from tests.unit.test_translations import untranslated, visible

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

ATTENTION = "/admin/orders/orderneedingattention/"
# Latin words that are names, not text: products and brands, the providers' and Tmetr's field names, abbreviations.
NAMES = {"Django", "Axes", "YooKassa", "Kassa", "TBank", "Tmetr", "SHA", "RUB", "ID", "UUID", "QR"}
NAMES |= {"shopId", "TerminalKey", "deviceId", "deviceUuid", "drinkNo", "uuid", "ts", "random", "salt"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9A-F]{4}-[0-9A-F]{4}")


@pytest.fixture
def staff(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("персонал", "staff@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("count", "russian"),
    [
        (0, "0 заказов, требующих внимания"),
        (1, "1 заказ, требующий внимания"),
        (2, "2 заказа, требующих внимания"),
        (4, "4 заказа, требующих внимания"),
        (5, "5 заказов, требующих внимания"),
        (11, "11 заказов, требующих внимания"),
        (21, "21 заказ, требующий внимания"),
        (22, "22 заказа, требующих внимания"),
        (112, "112 заказов, требующих внимания"),
    ],
)
def test_the_count_under_a_list_uses_russian_plural_forms(count: int, russian: str) -> None:
    cl = SimpleNamespace(model_admin=admin.site._registry[OrderNeedingAttention], result_count=count)
    with translation.override("ru"):
        assert result_count(cl) == russian
    with translation.override("en"):
        assert result_count(cl) == f"{count} order{'' if count == 1 else 's'} needing attention"


def test_every_list_of_ours_has_a_plural_count_label() -> None:
    ours = [model for model in admin.site._registry if model.__module__.startswith("coffee_payment.")]
    assert len(ours) == 7
    assert [m.__name__ for m in ours if not hasattr(admin.site._registry[m], "result_count_label")] == []


@pytest.mark.parametrize(
    ("orders", "russian"), [(0, "0 заказов,"), (1, "1 заказ,"), (2, "2 заказа,"), (5, "5 заказов,")]
)
def test_the_attention_list_counts_in_russian(staff: Client, orders: int, russian: str) -> None:
    for _ in range(orders):
        make_order(status="make_failed")
    page = visible(staff.get(ATTENTION).content.decode())
    assert f"{russian} требу" in page


def _pages() -> tuple[list[str], list[str]]:
    """Every admin page of ours for one set of rows, and the data values shown on them (not text to translate)."""
    order = make_order(status="make_failed", name="Автомат в холле", account_id="5551234")
    attempt = make_attempt(order, payment_id="pay-1")
    note = Notification.objects.create(provider="yookassa", body="{}", headers={}, attempt=attempt, detail="—")
    device, account = order.device, ProviderAccount.objects.get(merchant=order.device.merchant)
    data = [device.merchant.name, device.device_uuid, device.tmetr_device_id, order.machine_uuid, "pay-1"]
    pages = ["/admin/"]
    for model, row in [(Order, order), (OrderNeedingAttention, order), (PaymentAttempt, attempt)]:
        pages += [_admin_url(model), _admin_url(model, row.pk)]
    for model, row in [(Notification, note), (type(device), device), (type(account), account)]:
        pages += [_admin_url(model), _admin_url(model, row.pk)]
    pages += [_admin_url(type(device.merchant)), _admin_url(type(device.merchant), device.merchant.pk)]
    pages += [_admin_url(model, "add") for model in (type(device), type(account), type(device.merchant))]
    return pages, data


def _admin_url(model: type, pk: object = None) -> str:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    if pk is None:
        return base
    return f"{base}add/" if pk == "add" else f"{base}{pk}/change/"


def test_the_admin_pages_of_ours_are_russian(staff: Client) -> None:
    pages, data = _pages()
    assert len(pages) == 18
    found = {}
    for url in pages:
        response = staff.get(url)
        assert response.status_code == 200, url
        text = _UUID.sub(" ", visible(response.content.decode()))
        words = [word for word in untranslated(text, *data) if word not in NAMES]
        if words:
            found[url] = sorted(set(words))
    assert found == {}


def test_the_check_catches_an_english_label(staff: Client, monkeypatch) -> None:
    """The detector itself: a field label left in English is reported."""
    monkeypatch.setattr(Order._meta.get_field("drink_name"), "verbose_name", "drink name")
    order = make_order(status="make_failed")
    text = visible(staff.get(_admin_url(Order, order.pk)).content.decode())
    assert "Drink" in untranslated(text)
