from __future__ import annotations

from django.core.management.base import BaseCommand

from marketplace_site.catalog.services import book_publish_all


class Command(BaseCommand):
    help = "Re-emit every book through the outbox, so a fresh consumer learns the catalog."

    def handle(self, *args: object, **options: object) -> None:
        count = book_publish_all()
        self.stdout.write(f"recorded {count} catalog.book_upserted events in the outbox")
