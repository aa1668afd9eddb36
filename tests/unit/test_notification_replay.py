"""A stored notification whose processing raised is kept with verdict ``error`` and its traceback, answered 503 (the
provider retries), and can be re-processed once the cause is fixed (issue 9 item 7; dj-stripe's shape)."""

from __future__ import annotations

import pytest

from coffee_payment.payments import notifications
from coffee_payment.payments.models import Notification, NotificationVerdict
from coffee_payment.payments.notifications import Verdict, notification_process, notification_replay
from tests.unit.mock_http import run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


def _stored(body: bytes = b'{"TerminalKey": "t"}') -> Notification:
    return Notification.objects.create(provider="tbank", body=body.decode(), headers={})


def test_any_exception_is_recorded_with_its_traceback_and_answered_503(monkeypatch):
    async def broken(provider, body: bytes, admitted=None):
        raise KeyError("a bug in processing")

    monkeypatch.setattr(notifications, "provider_process", broken)
    stored = _stored()
    verdict = run(notification_process("tbank", stored.pk, stored.body.encode()))
    assert verdict.http_status == 503 and verdict.verdict == NotificationVerdict.ERROR
    stored.refresh_from_db()
    assert stored.verdict == NotificationVerdict.ERROR
    assert "KeyError" in stored.detail
    assert "Traceback" in stored.error and "a bug in processing" in stored.error
    assert stored.processed_at is not None


def test_replay_after_the_fix_records_the_new_verdict_and_clears_the_error(monkeypatch):
    seen: list[bytes] = []

    async def broken(provider, body: bytes, admitted=None):
        raise RuntimeError("database went away")

    async def fixed(provider, body: bytes, admitted=None):
        seen.append(body)
        return Verdict(NotificationVerdict.NO_CHANGE, 200, "duplicate"), None

    stored = _stored(b'{"TerminalKey": "t", "Status": "CONFIRMED"}')
    monkeypatch.setattr(notifications, "provider_process", broken)
    run(notification_process("tbank", stored.pk, stored.body.encode()))
    monkeypatch.setattr(notifications, "provider_process", fixed)
    verdict = run(notification_replay(stored.pk))
    assert verdict.http_status == 200
    assert seen == [stored.body.encode()]  # the stored body, byte for byte
    stored.refresh_from_db()
    assert (stored.verdict, stored.error) == (NotificationVerdict.NO_CHANGE, "")
