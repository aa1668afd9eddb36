"""The provider seam: the generic code (payment_initiate, the webhook view, the inbox, notification processing,
payment_settle, staff refunds) reaches a provider only through the registry, so a third provider registered there
(tests/unit/fake_provider.py) is paid, notified, settled, dispensed and refunded without a change anywhere else: no
migration (the ``provider`` columns' choices come from the registry), no URL line (its webhook is routed from its
``webhook_path``), no dispatch on a provider's name or client class in the generic code."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import re
import tokenize
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.forms import modelform_factory
from django.test import AsyncRequestFactory, Client
from django.urls import clear_url_caches

from coffee_payment import urls
from coffee_payment.devices.models import Device, ProviderAccount
from coffee_payment.integrations import http as shared_http
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus, MakeState, OrderStatus
from coffee_payment.payments import views
from coffee_payment.payments.models import Notification, NotificationVerdict, PaymentAttempt
from coffee_payment.payments.providers import PROVIDERS, provider_choices
from coffee_payment.payments.refunds import payment_refund
from coffee_payment.payments.services import payment_initiate
from tests.unit.factories import make_order
from tests.unit.fake_provider import FakeProvider

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


def _reload_urls() -> None:
    """Rebuild the URLconf from the registry as it is now, as a process start would."""
    importlib.reload(urls)
    clear_url_caches()


@pytest.fixture
def tmetr() -> list[dict]:
    """Tmetr answers 200 in-process; the make commands it received, in order."""
    received: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/command/make"):
            received.extend(json.loads(request.content))
        return httpx.Response(200, json={})

    shared_http.set_transport(httpx.MockTransport(handle))
    yield received
    shared_http.set_transport(None)


@pytest.fixture
def fake(tmetr) -> FakeProvider:
    """The fake provider registered as ``fakepay``: the one registry line (and the URLconf rebuilt from it)."""
    provider = FakeProvider()
    PROVIDERS[provider.name] = provider
    _reload_urls()
    try:
        yield provider
    finally:
        del PROVIDERS[provider.name]
        _reload_urls()


def _notify(provider: FakeProvider, payload: dict):
    request = AsyncRequestFactory().post(
        provider.webhook_path, data=json.dumps(payload), content_type="application/json", REMOTE_ADDR="203.0.113.7"
    )
    return asyncio.run(views.webhook(request, provider=provider.name))


def test_a_registered_third_provider_goes_through_the_whole_flow_over_http(fake, tmetr):
    """create (POST /v1/initiate-payment) → notification (POST at its webhook_path) → make (Tmetr), over the
    project's URLconf; the rows it needs validate like any provider's."""
    order = make_order(provider=fake.name)
    for row in (order.device, ProviderAccount.objects.get(merchant=order.device.merchant)):
        row.full_clean()  # the provider value is a valid choice: the admin would accept it
    client = Client(REMOTE_ADDR="203.0.113.9")
    created = client.post("/v1/initiate-payment", {"order_id": str(order.id)}, content_type="application/json")
    (payment_id,) = fake.bank.payments
    assert (created.status_code, created.json()) == (200, {"redirect_url": f"https://fake.example/pay/{payment_id}"})
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.provider, attempt.get_provider_display()) == (fake.name, fake.label)

    fake.bank.payments[payment_id]["status"] = "paid"  # the customer pays
    body = {"payment_id": payment_id, "reference": str(attempt.id)}
    notified = client.post(fake.webhook_path, body, content_type="application/json")
    assert (notified.status_code, notified.content) == (200, b"accepted")  # the provider's own answer format
    assert Notification.objects.get(provider=fake.name).verdict == NotificationVerdict.APPLIED
    assert fake.bank.calls == {"create": 1, "get": 1}
    made = Order.objects.get(pk=order.pk)  # Tmetr accepted the make: the drink is being made
    assert (made.status, made.make_state) == (OrderStatus.MAKE_PENDING, MakeState.ACCEPTED)
    assert [(make["deviceId"], make["orderUuid"]) for make in tmetr] == [
        (order.device.tmetr_device_id, order.machine_uuid)
    ]


def test_the_provider_choices_are_the_registry_and_need_no_migration(fake):
    assert provider_choices() == [("yookassa", "YooKassa"), ("tbank", "TBank"), ("fakepay", "FakePay")]
    # The fields (and so their migrations) hold a reference to provider_choices, not a list of today's providers ...
    fields = [(Device, "payment_scenario"), (ProviderAccount, "provider"), (PaymentAttempt, "provider")]
    for model, name in [*fields, (Notification, "provider")]:
        assert model._meta.get_field(name).deconstruct()[3]["choices"] is provider_choices, (model, name)
    # ... so with a provider more, makemigrations finds nothing to do (it would exit 1).
    call_command("makemigrations", "--check", "--dry-run", verbosity=0, stdout=io.StringIO())
    form = modelform_factory(Device, fields=["payment_scenario"])
    assert ("fakepay", "FakePay") in list(form().fields["payment_scenario"].choices)
    assert form({"payment_scenario": "fakepay"}).is_valid()
    assert not form({"payment_scenario": "nopay"}).is_valid()


def test_an_unregistered_provider_is_not_a_valid_choice():
    order = make_order(provider="fakepay")  # rows written around validation, as a provider later removed leaves
    with pytest.raises(ValidationError, match="payment_scenario"):
        order.device.full_clean()
    assert "fakepay" not in dict(provider_choices())


def test_a_third_providers_webhook_is_routed_from_its_webhook_path(fake):
    response = Client().post(fake.webhook_path, {"no": "payment"}, content_type="application/json")
    assert (response.status_code, response.content) == (400, b"no payment_id")


# The generic code: everything under orders/ and payments/ outside the provider packages (and migrations), plus
# the URLconf. A provider's name as a string literal, a comparison against one, a provider module imported, or a
# provider's class named there is dispatch by provider that the registry is meant to replace.
_GENERIC = sorted(
    path
    for folder in ("coffee_payment/orders", "coffee_payment/payments")
    for path in (ROOT / folder).rglob("*.py")
    if not {"providers", "migrations"} & set(path.relative_to(ROOT).parts)
) + [ROOT / "coffee_payment/urls.py"]
_PROVIDER_NAMES = {"yookassa", "tbank"}
_PROVIDER_CLASSES = re.compile(r"^(YooKassa|TBank)\w*$")
_PROVIDER_MODULE = re.compile(r"coffee_payment\.payments\.providers\.(yookassa|tbank)\b")


def dispatch_in(source: str) -> list[str]:
    """``line: token`` for each provider-specific token in ``source`` (comments and docstrings ignored)."""
    found = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for token in tokens:
        if token.type == tokenize.STRING and token.string.strip("\"'").lower() in _PROVIDER_NAMES:
            found.append(f"{token.start[0]}: {token.string}")
        elif token.type == tokenize.NAME and _PROVIDER_CLASSES.match(token.string):
            found.append(f"{token.start[0]}: {token.string}")
    found += [
        f"{n}: {m.group(0)}" for n, line in enumerate(source.splitlines(), 1) for m in _PROVIDER_MODULE.finditer(line)
    ]
    return found


def test_the_dispatch_scan_finds_what_it_looks_for():
    sample = (
        'if provider == "yookassa":\n    pass\n'
        "if isinstance(client, TBankClient):\n    pass\n"
        "from coffee_payment.payments.providers.tbank import TBank\n"
        '"""A docstring naming YooKassa and "tbank" is prose."""  # so is a comment: TBankClient\n'
    )
    assert dispatch_in(sample) == [
        '1: "yookassa"',
        "3: TBankClient",
        "5: TBank",
        "5: coffee_payment.payments.providers.tbank",
    ]


def test_no_dispatch_by_provider_remains_in_the_generic_code():
    assert len(_GENERIC) > 10 and ROOT / "coffee_payment/payments/services.py" in _GENERIC
    found = {str(p.relative_to(ROOT)): hits for p in _GENERIC if (hits := dispatch_in(p.read_text(encoding="utf-8")))}
    assert found == {}


def test_a_registered_third_provider_is_paid_notified_and_settled_through_the_generic_code(fake):
    order = make_order(provider=fake.name)
    url = asyncio.run(payment_initiate(order_id=str(order.id)))
    (payment_id,) = fake.bank.payments
    assert url == f"https://fake.example/pay/{payment_id}"
    attempt = PaymentAttempt.objects.get(order=order)
    assert attempt.provider == fake.name and attempt.provider_payment_id == payment_id
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING

    fake.bank.payments[payment_id]["status"] = "paid"  # the customer pays
    response = _notify(fake, {"payment_id": payment_id, "reference": str(attempt.id)})
    assert (response.status_code, response.content) == (200, b"accepted")  # the provider's own answer format
    note = Notification.objects.get(provider=fake.name)
    assert note.verdict == NotificationVerdict.APPLIED
    assert fake.bank.calls == {"create": 1, "get": 1}  # the claim was confirmed with the provider once
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert Order.objects.get(pk=order.pk).status in (OrderStatus.MAKE_PENDING, OrderStatus.SUCCESSFUL)

    again = _notify(fake, {"payment_id": payment_id, "reference": str(attempt.id)})  # a duplicate changes nothing
    assert again.status_code == 200
    assert Notification.objects.filter(provider=fake.name).latest("pk").verdict == NotificationVerdict.NO_CHANGE


def test_a_third_providers_malformed_and_unknown_notifications_are_answered_in_its_format(fake):
    bad = _notify(fake, {"no": "payment"})
    assert (bad.status_code, bad.content) == (400, b"no payment_id")
    unknown = _notify(fake, {"payment_id": "fp-404"})
    assert (unknown.status_code, unknown.content) == (200, b"accepted")
    verdicts = list(Notification.objects.filter(provider=fake.name).order_by("pk").values_list("verdict", flat=True))
    assert verdicts == [NotificationVerdict.REJECTED, NotificationVerdict.UNKNOWN_PAYMENT]
    assert fake.bank.calls == {}  # refused before any provider call


def test_a_third_providers_payment_is_refunded_through_the_protocol(fake):
    order = make_order(provider=fake.name)
    asyncio.run(payment_initiate(order_id=str(order.id)))
    (payment_id,) = fake.bank.payments
    attempt = PaymentAttempt.objects.get(order=order)
    fake.bank.payments[payment_id]["status"] = "paid"
    _notify(fake, {"payment_id": payment_id, "reference": str(attempt.id)})
    result = asyncio.run(payment_refund(order=Order.objects.get(pk=order.pk), actor="staff"))
    assert fake.bank.calls["refund"] == 1
    assert f"fakepay refund of {payment_id}: void" in result.detail
