"""Settings for the test process itself (servers started by tests use ``coffee_payment.settings``)."""

import os

os.environ.setdefault("SECRET_KEY", "insecure-key-for-the-test-process-only")
# A Fernet key for the test process only (provider secrets are encrypted at rest).
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1wcm9jZXNzLW9ubHktZmllbGQta2V5LTAwMDA=")

from coffee_payment.settings import *  # noqa: E402,F403
