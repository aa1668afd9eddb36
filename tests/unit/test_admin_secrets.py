"""The admin is no oracle for provider secrets and renders none (issue 11, item 1).

A staff user with only the *view* permission used to recover a secret with ``?secret__startswith=<prefix>``; every
such lookup is now refused the same way, whatever the prefix. Every admin page, log record and error page produced
here is scanned for the secrets.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings

from coffee_payment.devices.models import Merchant, ProviderAccount

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

SECRET = "ykSecret-0123456789abcdef"
NEW_SECRET = "tbPassword-fedcba9876543210"
CHANGELIST = "/admin/devices/provideraccount/"


@pytest.fixture
def account() -> ProviderAccount:
    merchant = Merchant.objects.create(name="Coffee Co")
    return ProviderAccount.objects.create(merchant=merchant, provider="yookassa", account_id="shop-7", secret=SECRET)


@pytest.fixture
def viewer(django_user_model) -> Client:
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provideraccount"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def scanned_logs(caplog):
    """Every log record of the test, all loggers, DEBUG and up; asserts at teardown that none holds a secret."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    text = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    assert SECRET not in text and NEW_SECRET not in text


def _assert_clean(response) -> None:
    body = response.content.decode(errors="replace")
    assert SECRET not in body and NEW_SECRET not in body, f"a secret in {response.request['PATH_INFO']}"


def test_view_only_staff_cannot_filter_on_the_secret(account, viewer, scanned_logs):
    assert viewer.get(CHANGELIST).status_code == 200
    right, wrong = (viewer.get(CHANGELIST, {"secret__startswith": prefix}) for prefix in (SECRET[:3], "zzz"))
    assert right.status_code == wrong.status_code == 400
    assert right.content == wrong.content  # the same answer whatever the prefix: no oracle
    _assert_clean(right)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (CHANGELIST, {"secret": SECRET}),
        (CHANGELIST, {"secret__exact": SECRET}),
        (CHANGELIST, {"secret__gt": "m"}),
        (CHANGELIST, {"merchant__provider_accounts__secret__startswith": "yk"}),
        ("/admin/devices/merchant/", {"provider_accounts__secret__startswith": "yk"}),
        ("/admin/devices/device/", {"merchant__provider_accounts__secret__startswith": "yk"}),
    ],
)
def test_no_admin_lookup_reaches_a_secret(account, admin_client, path, query, scanned_logs):
    response = admin_client.get(path, query)
    assert response.status_code == 400
    _assert_clean(response)


def test_the_changelist_cannot_sort_or_search_on_the_secret(account, admin_client):
    for query in ({"o": "4"}, {"o": "-4"}, {"q": SECRET[:4]}):
        response = admin_client.get(CHANGELIST, query)
        assert response.status_code in (200, 302)
        _assert_clean(response)
    assert b'name="q"' not in admin_client.get(CHANGELIST).content  # no search box


def test_admin_pages_never_render_a_secret(account, admin_client, scanned_logs):
    change = f"{CHANGELIST}{account.pk}/change/"
    pages = (CHANGELIST, change, f"{CHANGELIST}{account.pk}/history/", f"{CHANGELIST}{account.pk}/delete/")
    for path in (*pages, f"{CHANGELIST}add/"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        _assert_clean(response)
    invalid = admin_client.post(change, {"merchant": account.merchant_id, "provider": "nope", "secret": NEW_SECRET})
    assert invalid.status_code == 200 and b"errornote" in invalid.content
    _assert_clean(invalid)


def test_the_secret_is_write_only_blank_keeps_it(account, admin_client):
    change = f"{CHANGELIST}{account.pk}/change/"
    form = {"merchant": account.merchant_id, "provider": "yookassa", "account_id": "shop-7"}
    assert admin_client.post(change, {**form, "secret": ""}).status_code == 302
    assert ProviderAccount.objects.get(pk=account.pk).secret == SECRET
    assert admin_client.post(change, {**form, "secret": NEW_SECRET}).status_code == 302
    assert ProviderAccount.objects.get(pk=account.pk).secret == NEW_SECRET
    _assert_clean(admin_client.get(CHANGELIST))


@pytest.mark.parametrize("debug", [True, False])
def test_error_pages_and_their_log_lines_hold_no_secret(account, admin_user, monkeypatch, scanned_logs, debug):
    """A crash while saving a new secret: neither the (technical, with DEBUG) 500 page nor the log shows it."""

    def explode(self, *args, **kwargs):
        raise RuntimeError(f"storage failed for {self!r} with {self.secret!r}")

    monkeypatch.setattr(ProviderAccount, "save", explode)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    form = {"merchant": account.merchant_id, "provider": "yookassa", "account_id": "shop-7", "secret": NEW_SECRET}
    with override_settings(DEBUG=debug):
        response = client.post(f"{CHANGELIST}{account.pk}/change/", form)
    assert response.status_code == 500
    _assert_clean(response)
