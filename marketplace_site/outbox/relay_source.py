"""The outbox table as the relay sees it (events.relay.OutboxSource)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from events.environment import ConfigError
from events.relay import OutboxRow
from marketplace_site.outbox.models import OutboxMessage

MAX_BACKOFF_SECONDS = 300


def retry_delay(attempts: int) -> timedelta:
    """Wait before the next attempt of a row refused ``attempts`` times."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


class DjangoOutboxSource:
    """Runs on the relay's one database thread: claim and finish share a transaction."""

    def __init__(self) -> None:
        self._transaction: transaction.Atomic | None = None

    def claim(self, limit: int) -> list[OutboxRow]:
        close_old_connections()
        # Entered here, left in finish() or abandon(): one transaction holds
        # the claimed rows' locks while the batch is published.
        self._transaction = transaction.atomic()
        self._transaction.__enter__()
        pending = OutboxMessage.objects.filter(
            state=OutboxMessage.State.PENDING, next_attempt_at__lte=timezone.now()
        ).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            # A second relay skips the rows this one holds instead of waiting.
            pending = pending.select_for_update(skip_locked=True)
        try:
            return [
                OutboxRow(
                    id=row.id,
                    event_id=str(row.event_id),
                    event_type=row.event_type,
                    envelope=bytes(row.envelope),
                    correlation_id=row.correlation_id,
                    created_at=row.created_at,
                    attempts=row.attempts,
                )
                for row in pending[:limit]
            ]
        except BaseException as exc:
            # Left open, the transaction would outlive its connection, and
            # every later round would fail on it: the relay stuck for good.
            self._leave(exc)
            raise

    def finish(self, sent: Sequence[int], failed: dict[int, str]) -> None:
        now = timezone.now()
        try:
            if sent:
                OutboxMessage.objects.filter(pk__in=sent).update(
                    state=OutboxMessage.State.SENT,
                    sent_at=now,
                    attempts=F("attempts") + 1,
                    last_error="",
                )
            for row_id, error in failed.items():
                attempts = OutboxMessage.objects.get(pk=row_id).attempts + 1
                OutboxMessage.objects.filter(pk=row_id).update(
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=now + retry_delay(attempts),
                )
        except BaseException as exc:
            self._leave(exc)
            raise
        self._leave(None)

    def abandon(self) -> None:
        self._leave(RuntimeError("abandoned"))

    def _leave(self, error: BaseException | None) -> None:
        """Commit (no error) or roll back the claim's transaction."""
        atomic, self._transaction = self._transaction, None
        if atomic is not None:
            if error is None:
                atomic.__exit__(None, None, None)
            else:
                atomic.__exit__(type(error), error, error.__traceback__)

    def close(self) -> None:
        connection.close()


class CrashAfterConfirm(DjangoOutboxSource):
    """A failpoint for fault tests (RELAY_FAILPOINT=crash-after-confirm): the
    process dies after the broker confirmed a batch, before marking it sent."""

    def finish(self, sent: Sequence[int], failed: dict[int, str]) -> None:
        if sent:
            os._exit(137)
        super().finish(sent, failed)


FAILPOINTS = {"crash-after-confirm": CrashAfterConfirm}


def outbox_source_class() -> type[DjangoOutboxSource]:
    failpoint = settings.RELAY_FAILPOINT
    if failpoint and failpoint not in FAILPOINTS:
        raise ConfigError(f"unknown RELAY_FAILPOINT {failpoint!r}; known: {', '.join(FAILPOINTS)}")
    return FAILPOINTS.get(failpoint, DjangoOutboxSource)
