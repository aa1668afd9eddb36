"""Settings for the test process itself (servers started by tests use ``coffee_payment.settings``)."""

import os

os.environ.setdefault("SECRET_KEY", "insecure-key-for-the-test-process-only")

from coffee_payment.settings import *  # noqa: E402,F403
