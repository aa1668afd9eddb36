"""The errors a service raises when it refuses a customer's request, by meaning (shared by orders and payments).

Each carries a customer-facing ``message`` (already in the active language where the service translates it) and
the ``http_status`` the view answers with; views catch :class:`ServiceError` and render both. Provider and Tmetr
failures have their own classes at the integration edge (``payments/providers/base.py``,
``integrations/tmetr.py``); a service translates them into one of these.

=====================  ======  ================================================================
class                  status  meaning
=====================  ======  ================================================================
InvalidRequest         400     the request cannot be served as asked (e.g. a machine uuid reused)
NotFound               404     the order or device does not exist (or is disabled)
Conflict               409     the order's or device's state forbids it now (paid, expired, offline)
UpstreamError          502     a service we depend on refused or answered nonsense
TemporarilyUnavailable 503     a service we depend on is not answering: try again
=====================  ======  ================================================================
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """A request a service refuses: ``message`` for the customer, ``http_status`` for the view. Subclasses fix
    the status by meaning; ``http_status`` may still be given explicitly (PaymentError's callers do)."""

    default_status: ClassVar[int] = 400

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status or self.default_status


class InvalidRequest(ServiceError):
    """400: the request cannot be served as asked."""

    default_status = 400


class NotFound(ServiceError):
    """404: the order or device does not exist (or is disabled)."""

    default_status = 404


class Conflict(ServiceError):
    """409: the current state forbids it (already paid, expired, device offline)."""

    default_status = 409


class UpstreamError(ServiceError):
    """502: a provider or Tmetr refused, or answered without what we need."""

    default_status = 502


class TemporarilyUnavailable(ServiceError):
    """503: a provider is not answering, or a payment is still being created; the customer may try again."""

    default_status = 503
