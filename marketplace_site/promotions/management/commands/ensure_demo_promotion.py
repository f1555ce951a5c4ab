from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from marketplace_site.promotions.models import Promotion

# The banner adds the rule's own words to the name (promotions/wording.py):
# a name that said the rule again would say it twice.
DEMO_NAME = "Reading week"


class Command(BaseCommand):
    help = "Create the seed promotion for local demos if no promotion is running. Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.LOCAL_DEMO:
            raise CommandError(
                "the demo promotion is for local development only (marketplace_site.settings.local)"
            )
        now = timezone.now()
        running = Promotion.objects.filter(active=True, starts_at__lte=now, ends_at__gt=now)
        if running.exists():
            self.stdout.write(f"promotions running: {', '.join(p.name for p in running)}")
            return
        promotion = Promotion.objects.create(
            name=DEMO_NAME,
            buy_quantity=2,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=30),
            per_customer_limit=1,
        )
        self.stdout.write(
            f"created the demo promotion “{promotion.name}” until {promotion.ends_at:%b %d}"
        )
