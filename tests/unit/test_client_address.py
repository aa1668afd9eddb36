"""``client_ip``: the resolved client address, or None when it is not an IP (issue 11, item 4)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from coffee_payment.payments.models import Notification
from coffee_payment.serving.client_address import client_ip

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("remote_addr", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::1", "::1"),
        ("zzz", None),
        ("", None),
        (None, None),
        ("1.2.3.4.5", None),
        ("203.0.113.7:8080", None),
        ("[::1]", None),
        ("fe80::1%eth0", None),
        ("unix:/run/gunicorn.sock", None),
    ],
)
def test_client_ip(remote_addr, expected):
    request = RequestFactory().get("/")
    if remote_addr is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote_addr
    assert client_ip(request) == expected


@override_settings(SECURE_SSL_REDIRECT=True)
def test_django_never_reads_the_raw_forwarded_proto():
    """No SECURE_PROXY_SSL_HEADER: the header alone (e.g. under runserver, or from any peer) makes nothing secure."""
    request = RequestFactory().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert not request.is_secure()


@pytest.mark.django_db
@pytest.mark.parametrize(("remote_addr", "stored"), [("zzz", None), ("203.0.113.7", "203.0.113.7")])
def test_the_webhook_stores_only_an_ip(client, remote_addr, stored):
    response = client.post("/v1/tbank-webhook", data=b"{}", content_type="application/json", REMOTE_ADDR=remote_addr)
    assert response.status_code < 500
    assert all(row.remote_addr == stored for row in Notification.objects.all())
