from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class OutboxMessage(models.Model):
    """An event waiting to be published (or published), written in the same
    transaction as the change it reports, so neither exists without the other."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"

    event_id = models.UUIDField(unique=True, editable=False)
    event_type = models.CharField(max_length=64, help_text="Also the routing key.")
    # The serialized EventEnvelope, published as is.
    envelope = models.BinaryField(editable=False)
    correlation_id = models.CharField(max_length=64, blank=True)
    # The W3C trace context (traceparent, tracestate) of the work that recorded it.
    trace_context = models.JSONField(default=dict, blank=True)
    # Defaults the database fills in (db_default): a checkout's INSERT sends
    # only the event, and each parameter it does not send saves it time
    # (bench/README.md, the outbox's cost).
    created_at = models.DateTimeField(db_default=Now())
    state = models.CharField(max_length=16, choices=State.choices, db_default=State.PENDING)
    attempts = models.PositiveIntegerField(db_default=0)
    last_error = models.TextField(blank=True, db_default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    # A row the broker refused waits before its next attempt (backoff).
    next_attempt_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["id"]
        indexes = [
            # The relay's query: the oldest pending rows.
            models.Index(
                fields=["id"],
                name="outbox_pending_idx",
                condition=models.Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.state})"
