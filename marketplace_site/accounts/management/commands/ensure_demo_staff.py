from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "staff"
# A documented local demo account; the command refuses to run outside the local settings.
DEMO_PASSWORD = "bookstore-staff"


class Command(BaseCommand):
    help = "Create the local demo staff account (never in production). Safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.LOCAL_DEMO:
            raise CommandError(
                "the demo staff account is for local development only "
                "(marketplace_site.settings.local)"
            )
        users = get_user_model()
        user, created = users.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "staff@bookstore.local"}
        )
        if created or not user.is_staff:
            user.is_staff = user.is_superuser = True
            user.set_password(DEMO_PASSWORD)
            user.save()
        self.stdout.write(
            f"demo staff account: {DEMO_USERNAME} / {DEMO_PASSWORD} "
            f"(admin at http://127.0.0.1:{settings.MARKETPLACE_PORT}/admin/)"
        )
