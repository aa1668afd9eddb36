"""ASGI entry point: ``gunicorn -c gunicorn.conf.py coffee_payment.asgi:application``.

Django sits behind the probes wrapper, which answers ``/health``, ``/livez`` and ``/readyz`` without Django
and adds ``X-Worker-Pid`` to every response (coffee_payment/serving/probes.py).
The customer paths (``/v1/…``) go to a Django handler with an async-native middleware chain; everything else
(admin, static) to the full stack (coffee_payment/serving/lean.py says why). Request bodies above
``DATA_UPLOAD_MAX_MEMORY_SIZE`` are refused (413) before Django reads them (coffee_payment/serving/bodylimit.py).
"""

import os

import django
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coffee_payment.settings")
django.setup(set_prefix=False)

from coffee_payment.serving import probes  # noqa: E402
from coffee_payment.serving.bodylimit import bound_body  # noqa: E402
from coffee_payment.serving.lean import LeanASGIHandler, route  # noqa: E402

application = probes.wrap(bound_body(route(get_asgi_application(), LeanASGIHandler())))
