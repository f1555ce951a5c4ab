"""Celery tasks: translate, then call a service."""

from __future__ import annotations

from events.celery_app import app
from marketplace_site.notifications.services import digest_send_all


# Named explicitly: the beat schedule refers to this name.
@app.task(name="marketplace_site.notifications.tasks.send_weekly_digest")
def send_weekly_digest() -> int:
    return digest_send_all()
