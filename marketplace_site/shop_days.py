"""Days as the shop counts them: in its TIME_ZONE, not UTC's."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone


def day_starts_at(day: date) -> datetime:
    """The moment ``day`` starts in the shop's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def last_day(ends_at: datetime) -> date:
    """The last day a span ending at ``ends_at`` touches: an end at
    midnight sold nothing on the day it names."""
    return timezone.localdate(ends_at - timedelta(microseconds=1))
