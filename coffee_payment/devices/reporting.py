"""Error reports (the DEBUG technical 500 page, ``django.request`` log records) that cleanse secrets in every mode.

Django's ``SafeExceptionReporterFilter`` only cleanses when DEBUG is off (``is_active``), so a development 500 page
would show a provider secret typed into the admin (POST data marked with ``sensitive_post_parameters``) and the
values of ``*KEY*``/``*SECRET*`` settings. Secrets are secrets on a laptop too: this filter is always active.
Source: https://docs.djangoproject.com/en/5.2/howto/error-reporting/#custom-error-reports
"""

from __future__ import annotations

from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """``SafeExceptionReporterFilter`` with DEBUG on as well."""

    def is_active(self, request) -> bool:
        return True
