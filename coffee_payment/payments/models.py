"""Payment attempts (one provider payment each) and the inbox of provider notifications."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from coffee_payment.orders.display import order_reference
from coffee_payment.orders.models import Order
from coffee_payment.orders.state import AttemptStatus
from coffee_payment.payments.providers import provider_choices


class PaymentAttempt(models.Model):
    """One payment at a provider for an order.

    ``idempotency_key`` is created with the row, before the first provider call, and reused on every retry of
    this attempt (YooKassa ``Idempotence-Key``). ``id`` doubles as TBank's ``OrderId`` (36 chars, unique per
    operation). ``provider_payment_id`` is stored as text (TBank sends a string in responses and a number in
    notifications)."""

    id = models.UUIDField("ID", primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="attempts", verbose_name=_("order"))
    provider = models.CharField(_("provider"), max_length=16, choices=provider_choices)
    provider_payment_id = models.CharField(_("provider payment id"), max_length=64, null=True, blank=True)
    idempotency_key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, unique=True, editable=False)
    amount_kopecks = models.PositiveIntegerField(_("amount, kopecks"))
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    status = models.CharField(_("status"), max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.CREATING)
    confirmation_url = models.URLField(_("payment page address"), max_length=1000, blank=True)
    # The customer's e-mail as first sent for this attempt: a retry must send the same body (same idempotency key).
    customer_email = models.EmailField(_("customer's e-mail address"), blank=True)
    raw_response = models.JSONField(_("provider's answer"), default=dict, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Set while one request is creating this payment at the provider (others wait for its URL).
    create_claimed_at = models.DateTimeField(_("being created since"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    # The provider's last answer about this payment (a serialised ProviderPayment) and when the fetch that got it
    # started; notifications within PROVIDER_VERIFY_REUSE_S reuse it (payments/coalesce.py, issue 11).
    last_verified_at = models.DateTimeField(_("last checked with the provider"), null=True, blank=True)
    last_verified_answer = models.JSONField(_("answer of the last check"), null=True, blank=True)
    # Set while one worker fetches the payment from the provider for a notification (others wait and reuse), and
    # when such a fetch last failed (the notifications that waited for it fail too instead of fetching in turn).
    verify_claimed_at = models.DateTimeField(_("being checked since"), null=True, blank=True)
    verify_failed_at = models.DateTimeField(_("last check failed"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_payment_id"], name="unique_provider_payment_id"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")

    def __str__(self) -> str:
        return gettext("%(provider)s payment %(payment_id)s, order %(order)s") % {
            "provider": self.get_provider_display(),
            "payment_id": self.provider_payment_id or gettext("(being created)"),
            "order": order_reference(self.order_id),
        }


class NotificationVerdict(models.TextChoices):
    RECEIVED = "received", _("Received, not processed yet")
    APPLIED = "applied", _("Applied (state changed)")
    NO_CHANGE = "no_change", _("Verified; duplicate or stale, no change")
    UNKNOWN_PAYMENT = "unknown_payment", _("Payment not ours; ignored")
    REJECTED = "rejected", _("Rejected (bad body, token or data)")
    MISMATCH = "mismatch", _("Re-fetch disagreed with the notification")
    RETRY = "retry", _("Failed transiently; provider will retry")
    ERROR = "error", _("Processing raised an error; provider will retry (replayable from the admin)")


class Notification(models.Model):
    """A provider notification as received (stored before processing), with the verdict of processing it."""

    provider = models.CharField(_("provider"), max_length=16, choices=provider_choices)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    remote_addr = models.GenericIPAddressField(_("sender's address"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body"), help_text=_("the body as received; only its start for a rejected notification"))
    # Size and SHA-256 of the body as received: a rejected body is stored truncated (issue 11: a bounded inbox).
    body_bytes = models.PositiveIntegerField(_("body size, bytes"), null=True, blank=True)
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64, blank=True)
    body_truncated = models.BooleanField(_("body truncated"), default=False)
    verdict = models.CharField(
        _("verdict"), max_length=16, choices=NotificationVerdict.choices, default=NotificationVerdict.RECEIVED
    )
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    error = models.TextField(_("error"), blank=True, help_text=_("traceback of the last failed processing"))
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    attempt = models.ForeignKey(
        PaymentAttempt, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("payment attempt")
    )

    class Meta:
        indexes = [models.Index(fields=["provider", "received_at"]), models.Index(fields=["received_at"])]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self) -> str:
        return gettext("%(provider)s notification %(id)s (%(verdict)s)") % {
            "provider": self.get_provider_display(),
            "id": self.pk,
            "verdict": self.get_verdict_display(),
        }


class RateWindow(models.Model):
    """Requests counted per client address and scope in one fixed window (``payments/ratelimit.py``): a row per
    (``scope_key``, ``window_no``), incremented by one upsert, so the limit holds across workers and pods."""

    scope_key = models.CharField(max_length=80)
    window_no = models.BigIntegerField()
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope_key", "window_no"], name="unique_rate_window")]
        indexes = [models.Index(fields=["window_no"])]

    def __str__(self) -> str:
        return f"{self.scope_key} window {self.window_no}: {self.hits}"
