"""Metrics, access log and request ids (issue 17)."""
