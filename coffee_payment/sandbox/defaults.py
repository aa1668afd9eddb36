"""Constants shared by the sandbox emulators and the demo data (``seed_demo``).

The sandbox serves the three external services under path prefixes of one origin; our settings point each
client's base URL at the prefix (e.g. ``YOOKASSA_API_URL=http://127.0.0.1:8001/yookassa/v3/``).
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001

YOOKASSA_PREFIX = "/yookassa/v3/"
TBANK_PREFIX = "/tbank/v2/"
TMETR_PREFIX = "/tmetr/"

# Demo credentials the sandbox accepts (and the only ones it accepts).
YOOKASSA_SHOP_ID = "100500"
YOOKASSA_SECRET_KEY = "test_sandbox_secret_key"
TBANK_TERMINAL_KEY = "CoffeeDemoTerminal"  # ≤ 20 chars, as TBank requires
TBANK_PASSWORD = "sandbox-password-1"  # ≤ 20 chars
TMETR_TOKEN = "sandbox-tmetr-token"

# Price the sandbox Tmetr returns for any drink it has no explicit price for, in kopecks.
DEFAULT_PRICE_KOPECKS = 15000


def sandbox_base_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """Origin of a sandbox on ``host:port``, e.g. ``http://127.0.0.1:8001``."""
    return f"http://{host}:{port}"
