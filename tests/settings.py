"""Settings for the test process itself (servers started by tests use ``coffee_payment.settings``)."""

import os

os.environ.setdefault("SECRET_KEY", "insecure-key-for-the-test-process-only")
# A Fernet key for the test process only (provider secrets are encrypted at rest).
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1wcm9jZXNzLW9ubHktZmllbGQta2V5LTAwMDA=")

from coffee_payment.settings import *  # noqa: E402,F403

# A file, not SQLite's shared-cache in-memory database: concurrent threads (the durable make's database steps run
# off the request thread) then wait on the busy timeout as in production instead of failing with "table is
# locked".
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"coffee-test-{os.getpid()}.sqlite3")
    }
