"""The Django floor: the least Django can do to serve the status JSON's read, under the product's worker class.

``gunicorn -c gunicorn.conf.py loadtests.floor_app:application`` with ``DJANGO_SETTINGS_MODULE=
loadtests.floor_settings`` (no middleware, the product's ``DATABASES``: PostgreSQL through the psycopg pool).
``GET /v1/order-status/<order_id>`` does the status JSON's one-row read — the order joined with its device —
as one raw query in one ``sync_to_async`` call and answers the row as JSON (404 for an unknown or malformed id).
The load runner measures its wrk ceiling beside the product's status JSON in the same run: the product's ceiling
divided by this one is the "status JSON vs Django floor" goal (docs/performance.md).
"""

from __future__ import annotations

import os
import uuid

import django
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loadtests.floor_settings")

# The columns the status JSON shows (coffee_payment/orders/selectors.py), one row, one round trip.
READ_SQL = (
    "SELECT o.id, o.status, o.drink_name, o.size, o.price_kopecks, o.expires_at, o.make_state, "
    "d.device_uuid, d.name, d.location, d.help_line, d.payment_scenario, d.show_provider_name "
    "FROM orders_order o JOIN devices_device d ON d.id = o.device_id WHERE o.id = %s"
)


def read_order(order_id: str) -> dict | None:
    """The order's row as a dict (``expires_at`` as ISO 8601, ``id`` as a string), None when unknown/malformed."""
    try:
        key = uuid.UUID(order_id)
    except ValueError:
        return None
    with connection.cursor() as cursor:
        cursor.execute(READ_SQL, [key])
        row = cursor.fetchone()
        if row is None:
            return None
        names = [column.name for column in cursor.description]
    body = dict(zip(names, row, strict=True))
    body["id"], body["expires_at"] = str(body["id"]), body["expires_at"].isoformat()
    return body


async def order_status(request: HttpRequest, order_id: str) -> JsonResponse:
    """The row as JSON (200), or 404 ``{"error": "order not found"}``."""
    body = await sync_to_async(read_order)(order_id)
    if body is None:
        return JsonResponse({"error": "order not found"}, status=404)
    return JsonResponse(body)


async def health(request: HttpRequest) -> JsonResponse:
    """``GET /health``: 200 ``{"status": "ok"}`` (the runner waits for it before measuring)."""
    return JsonResponse({"status": "ok"})


urlpatterns = [path("v1/order-status/<str:order_id>", order_status), path("health", health)]

django.setup(set_prefix=False)
application = get_asgi_application()
