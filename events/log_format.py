"""One log format for every process: plain text, or JSON with LOG_FORMAT=json.

Every line carries the correlation id (see events.correlation), so one
purchase can be followed through the site, relay, worker and recommender.
"""

from __future__ import annotations

import logging
import os

from pythonjsonlogger.json import JsonFormatter

from events.correlation import CorrelationIdFilter

PLAIN = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(correlation_id)s %(message)s"


def log_formatter() -> logging.Formatter:
    kind = (os.environ.get("LOG_FORMAT") or "plain").strip().lower()
    if kind == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"})
    if kind != "plain":
        raise ValueError(f"LOG_FORMAT must be plain or json, got {kind!r}")
    return logging.Formatter(PLAIN)


def configure_logging(level: str = "INFO") -> None:
    """For processes without Django (the recommender): stderr, our format."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter())
    handler.addFilter(CorrelationIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
