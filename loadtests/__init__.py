"""Load suite: the locust profile (locustfile.py), the comparison runner (runner.py) and its report (report.py)."""
