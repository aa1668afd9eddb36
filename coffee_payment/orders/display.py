"""What the customer sees of an order: plain-words status with its next step, money the local way, a short
order reference. Pure functions over an order's fields (no I/O), translated with the active language."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from coffee_payment.orders.state import PAYABLE, OrderStatus

NBSP = "\u00a0"
# Staff search: "1A2B-3C4D", "1a2b3c4d", with or without the dash (the first 8 hex digits of the order id).
_REFERENCE_RE = re.compile(r"([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})")


def format_money(kopecks: int, language: str | None = None) -> str:
    """Rubles the local way: ``15000`` → ``"150,00 ₽"`` in Russian, ``"₽150.00"`` in English; thousands are
    grouped (``"1 500,00 ₽"`` with a no-break space, ``"₽1,500.00"``). ``language`` defaults to the active one."""
    rubles, kop = divmod(int(kopecks), 100)
    if (language or get_language() or "ru").startswith("en"):
        return f"₽{rubles:,}.{kop:02d}"
    return f"{rubles:,}".replace(",", NBSP) + f",{kop:02d}{NBSP}₽"


def order_reference(order_id: uuid.UUID | str) -> str:
    """The short reference shown to the customer and searched by staff: the id's first 8 hex digits, ``1A2B-3C4D``."""
    hex_id = uuid.UUID(str(order_id)).hex.upper()
    return f"{hex_id[:4]}-{hex_id[4:8]}"


def reference_prefix(text: str) -> str | None:
    """The lowercase 8-hex-digit id prefix a staff search term stands for, or None if it is not a reference."""
    match = _REFERENCE_RE.fullmatch(text.strip())
    return (match.group(1) + match.group(2)).lower() if match else None


def order_is_expired(status: str, expires_at: datetime, now: datetime) -> bool:
    """An unpaid order past its expiry: it can no longer be paid (re-scanning its QR code does not revive it)."""
    return status in PAYABLE and expires_at <= now


@dataclass(frozen=True)
class CustomerStatus:
    """The status in plain words. ``action``: ``pay`` | ``pay_again`` | ``continue`` | ``""`` (nothing to do but
    wait, or the end); ``final``: the page stops polling; ``tone``: ``neutral`` | ``good`` | ``bad``."""

    text: str
    next_step: str
    action: str
    final: bool
    tone: str


_HELP = _("Staff will make your drink or refund the money: please call the help line below.")
# status -> (text, next step, action, final, tone); the action of ``pending`` needs a live payment page.
_TEXTS = {
    OrderStatus.CREATED: (_("Waiting for payment"), _("Tap Pay to pay by card."), "pay", False, "neutral"),
    OrderStatus.PENDING: (
        _("Payment in progress"),
        _("If you left the payment page before paying, tap Continue payment."),
        "continue",
        False,
        "neutral",
    ),
    OrderStatus.PAID: (_("Paid"), _("The machine will start your drink in a moment."), "", False, "good"),
    OrderStatus.MAKE_PENDING: (
        _("Your drink is being made"),
        _("Take your drink from the machine when it is ready."),
        "",
        False,  # still polled: a rejected make turns into make_failed
        "good",
    ),
    OrderStatus.SUCCESSFUL: (_("Done — enjoy your drink"), _("Thank you!"), "", True, "good"),
    OrderStatus.NOT_PAID: (
        _("The payment did not go through"),
        _("No money was taken. You can try again."),
        "pay_again",
        False,
        "bad",
    ),
    OrderStatus.FAILED: (_("There was a problem with the payment"), _HELP, "", True, "bad"),
    OrderStatus.MAKE_FAILED: (_("The machine could not make your drink"), _HELP, "", True, "bad"),
    OrderStatus.MAKE_UNKNOWN: (_("We are checking that your drink was made"), _HELP, "", True, "bad"),
    OrderStatus.MANUAL_MAKE: (_("Your payment arrived late"), _HELP, "", True, "bad"),
    OrderStatus.REFUNDED: (
        _("The money has been refunded"),
        _("It returns to your card within a few days."),
        "",
        True,
        "neutral",
    ),
}


def customer_status(status: str, *, expired: bool, can_continue: bool) -> CustomerStatus:
    """The plain-words status of an order for the customer (every status has a next step or a clear end)."""
    if expired:
        return CustomerStatus(
            str(_("This order has expired")), str(_("Please order again at the machine.")), "", True, "bad"
        )
    text, next_step, action, final, tone = _TEXTS[OrderStatus(status)]
    if action == "continue" and not can_continue:
        action, next_step = "", _("Waiting for the payment service. This page updates by itself.")
    return CustomerStatus(str(text), str(next_step), action, final, tone)
