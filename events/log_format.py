"""One log format for every process: plain text, or JSON with LOG_FORMAT=json.

Every line carries the trace id of the work in hand (events.tracing), so one
purchase can be followed through the site, relay, worker and recommender,
in the logs as in a trace.
No line carries a password: code that logs a URL passes it through
``redact_url`` first, and the formatters redact any URL password that still
slips into a message or a traceback (a library's exception quoting its URL).
"""

from __future__ import annotations

import logging
import re

from pythonjsonlogger.json import JsonFormatter

from events.tracing import TraceIdFilter

PLAIN = "%(asctime)s %(levelname)s %(name)s [%(trace_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(trace_id)s %(span_id)s %(message)s"


REDACTED = "***"
# scheme://user:password@ (the user is kept: it helps, and it is no secret).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` (or any text holding URLs) with every password replaced by ***."""
    return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", url)


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


class PlainFormatter(_Redacting):
    pass


class JsonLineFormatter(_Redacting, JsonFormatter):
    pass


def log_formatter(kind: str = "plain") -> logging.Formatter:
    """A formatter of ``kind`` (LOG_FORMAT, read with the process's settings)."""
    if kind == "json":
        return JsonLineFormatter(
            JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"}
        )
    if kind != "plain":
        raise ValueError(f"LOG_FORMAT must be plain or json, got {kind!r}")
    return PlainFormatter(PLAIN)


def configure_logging(level: str = "INFO", kind: str = "plain") -> None:
    """For processes without Django (the recommender): stderr, our format."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(kind))
    handler.addFilter(TraceIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
