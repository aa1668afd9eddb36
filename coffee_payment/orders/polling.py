"""How often the status page polls the status JSON: one constant, read by the page and by the load profile.

Plain Python on purpose (no Django import): ``loadtests/locustfile.py`` and ``loadtests/runner.py`` read it without
setting Django up, so the load profile polls exactly as often as the page (docs/performance.md).
"""

# Milliseconds between two ``GET /v1/order-status/<id>`` of an open status page (orders/status.html's setInterval).
STATUS_POLL_INTERVAL_MS = 1500
