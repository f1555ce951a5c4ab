"""The outbox table as the relay sees it (events.relay.OutboxSource)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from datetime import timedelta

from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from events.relay import OutboxRow
from marketplace_site.outbox.models import OutboxMessage

MAX_BACKOFF_SECONDS = 300


def retry_delay(attempts: int) -> timedelta:
    """Wait before the next attempt of a row refused ``attempts`` times."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


# What the relay reports of a batch: the rows sent, and each refused row's error.
Outcome = tuple[Sequence[int], dict[int, str]]


class DjangoOutboxSource:
    """Runs on the relay's one database thread. A batch's claim and its
    marking share one transaction, held by _batch() while it waits for the
    relay's outcome: the claimed rows stay locked while they are published."""

    def __init__(self) -> None:
        self._open_batch: Generator[list[OutboxRow], Outcome, None] | None = None

    def claim(self, limit: int) -> list[OutboxRow]:
        close_old_connections()
        # A failure here has already rolled the batch back: left open, the
        # transaction would outlive its connection and stick the relay for good.
        batch = self._batch(limit)
        rows = next(batch)
        self._open_batch = batch
        return rows

    def finish(self, sent: Sequence[int], failed: dict[int, str]) -> None:
        batch, self._open_batch = self._open_batch, None
        if batch is not None:
            with contextlib.suppress(StopIteration):
                batch.send((sent, failed))

    def abandon(self) -> None:
        batch, self._open_batch = self._open_batch, None
        if batch is not None:
            batch.close()  # GeneratorExit in _batch(): the transaction rolls back

    def _batch(self, limit: int) -> Generator[list[OutboxRow], Outcome, None]:
        """Claim up to ``limit`` due rows, yield them, take the outcome of
        publishing them, and mark them; one transaction from claim to commit."""
        with transaction.atomic():
            pending = OutboxMessage.objects.filter(
                state=OutboxMessage.State.PENDING, next_attempt_at__lte=Now()
            ).order_by("id")
            if connection.features.has_select_for_update_skip_locked:
                # A second relay skips the rows this one holds instead of waiting.
                pending = pending.select_for_update(skip_locked=True)
            claimed = list(pending[:limit])
            sent, failed = yield [
                OutboxRow(
                    id=row.id,
                    event_id=str(row.event_id),
                    event_type=row.event_type,
                    envelope=bytes(row.envelope),
                    correlation_id=row.correlation_id,
                    trace_context=row.trace_context,
                    created_at=row.created_at,
                    attempts=row.attempts,
                )
                for row in claimed
            ]
            _mark(sent, [row for row in claimed if row.id in failed], failed)

    def close(self) -> None:
        connection.close()


def _mark(sent: Sequence[int], refused: list[OutboxMessage], errors: dict[int, str]) -> None:
    """Mark ``sent`` rows sent, and record each refused row's attempt and
    error: one statement each (the rows are locked, so their attempts are
    the ones claimed)."""
    now = timezone.now()
    if sent:
        OutboxMessage.objects.filter(pk__in=sent).update(
            state=OutboxMessage.State.SENT, sent_at=now, attempts=F("attempts") + 1, last_error=""
        )
    for row in refused:
        row.attempts += 1
        row.last_error = errors[row.id][:2000]
        row.next_attempt_at = now + retry_delay(row.attempts)
    if refused:
        OutboxMessage.objects.bulk_update(refused, ["attempts", "last_error", "next_attempt_at"])
