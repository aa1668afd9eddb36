"""gunicorn.conf.py without the request layer (no request ids, HTTP metrics or access log): the "off" side of
``loadtests/monitoring_cost.py``. Benchmarks only — production always runs gunicorn.conf.py."""

import os

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(_ROOT, "gunicorn.conf.py")) as _conf:
    exec(compile(_conf.read(), os.path.join(_ROOT, "gunicorn.conf.py"), "exec"))  # noqa: S102 - our own file


def post_worker_init(worker):  # noqa: F811 - replaces the one gunicorn.conf.py names
    """Leave the app as it is (uvicorn keeps its own proxy-headers handling)."""
