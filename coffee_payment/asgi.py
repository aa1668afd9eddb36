"""ASGI entry point: ``gunicorn -c gunicorn.conf.py coffee_payment.asgi:application``.

Django sits behind the probes wrapper, which answers ``/health``, ``/livez`` and ``/readyz`` without Django
and adds ``X-Worker-Pid`` to every response (coffee_payment/serving/probes.py).
"""

import os

from django.core.asgi import get_asgi_application

from coffee_payment.serving import probes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coffee_payment.settings")

application = probes.wrap(get_asgi_application())
