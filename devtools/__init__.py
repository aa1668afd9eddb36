"""Dev & ops toolkit used by ``tasks.py``, the test suites, the drill and the load runner (not shipped logic)."""
