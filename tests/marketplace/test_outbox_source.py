"""The outbox as the relay claims and marks it, without a broker: a batch's
marking costs the same few statements however many rows it holds."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bookstore.events.v1 import events_pb2
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.outbox.relay_source import DjangoOutboxSource
from marketplace_site.outbox.services import outbox_record

# transaction=True: claim() closes a connection left in a transaction, as a test's would be.
pytestmark = pytest.mark.django_db(transaction=True)


def record(n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            outbox_record(payload=events_pb2.BookUpserted(book_id=i + 1, title=f"B{i}"))


def publish_half(rows: int) -> int:
    """Claim ``rows`` rows, report every other one refused; the statements run."""
    OutboxMessage.objects.all().delete()
    record(rows)
    source = DjangoOutboxSource()
    with CaptureQueriesContext(connection) as queries:
        claimed = source.claim(rows)
        source.finish(
            [row.id for row in claimed[::2]], {row.id: "NO_ROUTE" for row in claimed[1::2]}
        )
    assert len(claimed) == rows
    return len(queries)


def test_marking_a_batch_takes_as_many_statements_for_40_rows_as_for_4():
    assert publish_half(40) == publish_half(4)


def test_sent_rows_are_marked_sent_and_refused_ones_wait_with_their_error():
    record(4)
    source = DjangoOutboxSource()
    claimed = source.claim(10)
    source.finish([claimed[0].id, claimed[2].id], {claimed[1].id: "NO_ROUTE", claimed[3].id: "x"})
    rows = list(OutboxMessage.objects.order_by("id"))
    assert [r.state for r in rows] == ["sent", "pending", "sent", "pending"]
    assert [r.attempts for r in rows] == [1, 1, 1, 1]
    assert [r.last_error for r in rows] == ["", "NO_ROUTE", "", "x"]
    assert all(r.next_attempt_at > r.created_at for r in rows[1::2])
    # Not due yet: the next claim leaves them alone.
    assert source.claim(10) == []
    source.finish([], {})


def test_an_abandoned_batch_leaves_its_rows_pending_as_they_were():
    record(2)
    source = DjangoOutboxSource()
    assert len(source.claim(10)) == 2
    source.abandon()
    assert [(r.state, r.attempts) for r in OutboxMessage.objects.all()] == [("pending", 0)] * 2
