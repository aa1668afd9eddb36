"""WSGI entry point (used by ``manage.py runserver``; production serves ``coffee_payment.asgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coffee_payment.settings")
application = get_wsgi_application()
