"""Building e-mails from templates (plain text and HTML), and whether they can be sent."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.template.loader import render_to_string

log = logging.getLogger(__name__)


def mail_server_up() -> bool:
    """Whether the SMTP server takes a connection now (connect, greet, log in).
    Other backends (console, file, in-memory) have no server: always up."""
    connection = get_connection(fail_silently=False)
    if not isinstance(connection, SmtpBackend):
        return True
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("the mail server is unavailable: %s: %s", type(exc).__name__, exc)
        return False
    connection.close()
    return True


def site_url(path: str) -> str:
    """An absolute link for an e-mail, which has no request to build it from."""
    return settings.SITE_URL.rstrip("/") + path


def email_build(
    *, to: str, subject: str, template: str, context: Mapping[str, Any]
) -> EmailMultiAlternatives:
    """``template`` names ``emails/<template>.txt`` and ``emails/<template>.html``."""
    context = {"site_url": settings.SITE_URL.rstrip("/"), **context}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    return message


def email_send(*, to: str, subject: str, template: str, context: Mapping[str, Any]) -> None:
    # fail_silently is off: a failed send fails the handler, so the event is retried.
    email_build(to=to, subject=subject, template=template, context=context).send()
