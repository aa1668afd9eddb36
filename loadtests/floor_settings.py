"""Settings of the load suite's Django floor target (``loadtests/floor_app.py``): no middleware, no apps, one URL.

The database is the product's own ``DATABASES`` (``coffee_payment.settings``: ``DATABASE_URL``, the psycopg pool
with ``DB_POOL_*``, the statement and lock timeouts), so the floor and the product read through the same driver,
pool and server. Nothing else of the product is configured: this is what Django costs at its least.
"""

from __future__ import annotations

from coffee_payment.settings import DATABASES, SECRET_KEY  # noqa: F401 - re-exported as this module's settings

DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "loadtests.floor_app"
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
