"""An ASGI app module whose import raises (tests/integration/test_gunicorn_faults.py): a broken deploy."""

raise RuntimeError("serving_raising_app: import failed on purpose")
