"""How far behind the relay is; the events it has sent, to send them again."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from events.operators import PastEvent
from marketplace_site.outbox.models import OutboxMessage


@dataclass(frozen=True)
class OutboxLag:
    pending: int
    # Age of the oldest event not yet published; zero when nothing waits.
    oldest_pending_age: timedelta
    retrying: int
    sent_last_hour: int
    last_error: str


def outbox_lag(*, now: datetime | None = None) -> OutboxLag:
    now = now or timezone.now()
    pending = Q(state=OutboxMessage.State.PENDING)
    figures = OutboxMessage.objects.aggregate(
        pending=Count("id", filter=pending),
        oldest=Min("created_at", filter=pending),
        retrying=Count("id", filter=pending & Q(attempts__gt=0)),
        sent_last_hour=Count(
            "id", filter=Q(state=OutboxMessage.State.SENT, sent_at__gte=now - timedelta(hours=1))
        ),
    )
    failing = (
        OutboxMessage.objects.filter(pending, attempts__gt=0)
        .order_by("-id")
        .values_list("last_error", flat=True)
    ).first()
    return OutboxLag(
        pending=figures["pending"],
        oldest_pending_age=(now - figures["oldest"]) if figures["oldest"] else timedelta(0),
        retrying=figures["retrying"],
        sent_last_hour=figures["sent_last_hour"],
        last_error=failing or "",
    )


def outbox_sent_events(event_types: Collection[str] = ()) -> Iterator[PastEvent]:
    """Every event the relay has published (of ``event_types``, or all), oldest
    first: the outbox keeps sent rows, so it is the shop's history of events."""
    rows = OutboxMessage.objects.filter(state=OutboxMessage.State.SENT).order_by("id")
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    fields = ("event_id", "event_type", "correlation_id", "envelope")
    for event_id, event_type, correlation_id, envelope in rows.values_list(*fields).iterator(
        chunk_size=2000
    ):
        yield PastEvent(str(event_id), event_type, correlation_id, bytes(envelope))
