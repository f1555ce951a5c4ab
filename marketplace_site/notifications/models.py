"""Which customer got which week's digest."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DigestDelivery(models.Model):
    """Recorded right after the customer's digest went out: a rerun of the
    week's task (a worker lost mid-run redelivers it) skips them."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    # The ISO week, e.g. "2026-W48".
    week = models.CharField(max_length=8)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "week"], name="one_digest_per_user_and_week")
        ]

    def __str__(self) -> str:
        return f"{self.week} digest to user {self.user_id}"
