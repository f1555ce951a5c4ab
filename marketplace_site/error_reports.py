"""What Django's error reports (the debug page, the e-mails to ADMINS) may show.

Django hides settings whose names look secret (…PASS…, …KEY…, …TOKEN…), but
AMQP_URL, CELERY_BROKER_URL and DATABASE_URL-style values carry a password
inside a URL under an innocent name.
"""

from __future__ import annotations

from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from events.log_format import redact_url


class UrlPasswordFilter(SafeExceptionReporterFilter):
    """Django's filter, with every password inside a URL replaced as in the logs."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and "://" in cleansed:
            return redact_url(cleansed)
        return cleansed
