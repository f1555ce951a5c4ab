from __future__ import annotations

from django.core.management.base import BaseCommand

from marketplace_site.outbox.selectors import outbox_lag


class Command(BaseCommand):
    help = "Show the outbox lag: events waiting for the relay, and why any are retried."

    def handle(self, *args: object, **options: object) -> None:
        lag = outbox_lag()
        self.stdout.write(f"pending: {lag.pending}")
        self.stdout.write(f"oldest pending: {lag.oldest_pending_age.total_seconds():.1f}s")
        self.stdout.write(f"retrying after an error: {lag.retrying}")
        self.stdout.write(f"sent in the last hour: {lag.sent_last_hour}")
        if lag.last_error:
            self.stdout.write(f"latest error: {lag.last_error}")
