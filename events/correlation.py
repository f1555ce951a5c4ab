"""The correlation id of the work in hand (an HTTP request, an event), for logs.

Set by the site's middleware per request and by consumers per event, so one
purchase can be followed across processes with one grep.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str] = ContextVar("correlation_id", default="-")


def current_correlation_id() -> str:
    return _current.get()


@contextmanager
def correlation(correlation_id: str) -> Iterator[None]:
    token = _current.set(correlation_id or "-")
    try:
        yield
    finally:
        _current.reset(token)


class CorrelationIdFilter(logging.Filter):
    """Adds ``correlation_id`` to every record (an explicit ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _current.get()
        return True
