"""Celery tasks: translate, then call a service."""

from __future__ import annotations

from smtplib import SMTPException

from events.celery_app import app
from marketplace_site.accounts.password_reset import password_reset_send


# The site sends it (through the shop's app, hence app.task: the site never
# loads events.celery_app otherwise); a mail server that is down is tried again.
@app.task(
    name="marketplace_site.accounts.tasks.send_password_reset",
    autoretry_for=(OSError, SMTPException),
    retry_backoff=True,
    max_retries=5,
)
def send_password_reset(email: str) -> int:
    return password_reset_send(email=email)
