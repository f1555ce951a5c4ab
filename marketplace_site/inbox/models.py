from __future__ import annotations

from django.db import models


class InboxEvent(models.Model):
    """One row per (consumer, event) applied, written in the same transaction
    as the handler's effects: its unique key is what makes handlers idempotent."""

    consumer = models.CharField(max_length=100)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    correlation_id = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-applied_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_once_per_consumer")
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.event_id}"


class InboxFact(models.Model):
    """One row per (consumer, fact) applied, where the event type's contract
    names a key for its facts (a purchase is one order): the same fact
    published again under another event id is then applied once too."""

    consumer = models.CharField(max_length=100)
    event_type = models.CharField(max_length=64)
    key = models.CharField(max_length=64)
    # The event that applied it.
    event_id = models.UUIDField()
    applied_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "event_type", "key"], name="inbox_fact_once_per_consumer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.key}"
