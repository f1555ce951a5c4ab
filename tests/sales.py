"""Sales as the campaigns worker receives them, for the ledger and report tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User

from events.contracts import Event, unwrap, wrap
from marketplace_site.campaigns.services import sales_record
from marketplace_site.catalog.models import Book
from marketplace_site.event_handlers import worker_handlers
from marketplace_site.outbox.models import OutboxMessage
from tests.inbox import inbox_apply
from tests.payloads import purchase_payload

CAMPAIGNS = "worker.campaigns"
# The consumers whose tables a campaign report reads.
REPORTED_BY = ("worker.campaigns", "worker.promotions")


def purchase(
    order_id: int,
    lines: list[tuple[Book, int]],
    *,
    at: datetime,
    user_id: int | None = None,
    event_id: str | None = None,
    **fields: Any,
) -> Event:
    """A PurchaseCompleted as the worker receives it (wrapped, sent, unwrapped),
    by a customer of the shop's own unless ``user_id`` says otherwise; ``fields``
    go to tests.payloads.purchase_payload."""
    if user_id is None:
        user_id = User.objects.get_or_create(username="buyer")[0].pk
    payload = purchase_payload(
        order_id=order_id,
        user_id=user_id,
        lines=[
            (book.pk, quantity, str(book.price), book.category.code) for book, quantity in lines
        ],
        **fields,
    )
    envelope = wrap(
        payload, correlation_id="c-test", producer="tests", event_id=event_id, occurred_at=at
    )
    return unwrap(envelope.SerializeToString())


def record(event: Event) -> bool:
    return inbox_apply(consumer=CAMPAIGNS, event=event, handler=sales_record)


def apply_outbox(*, at: datetime, after_id: int = 0) -> int:
    """Apply the checkout events in the outbox past ``after_id`` as the
    campaigns and promotions workers would, dated ``at`` (when the report
    should see them sold); returns the last row's id."""
    last = after_id
    for row in OutboxMessage.objects.filter(pk__gt=after_id).order_by("pk"):
        last = row.pk
        sent = unwrap(bytes(row.envelope))
        dated = wrap(sent.payload, correlation_id="c-test", producer="tests", occurred_at=at)
        event = unwrap(dated.SerializeToString())
        for consumer in REPORTED_BY:
            if handler := worker_handlers()[consumer].get(row.event_type):
                inbox_apply(consumer=consumer, event=event, handler=handler)
    return last
