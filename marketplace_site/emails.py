"""Building e-mails from templates (plain text and HTML), and whether they can be sent."""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections.abc import Mapping, Sequence
from email.message import Message
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
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


class _Email(EmailMultiAlternatives):
    """Its MIME boundaries are chosen when the message is made. Left unset, the
    e-mail package picks one while writing and compiles a regular expression
    per message to check the text does not contain it: 12% of an order
    confirmation's CPU. A random 128-bit boundary, drawn after the text is
    written, cannot occur in it by chance."""

    def message(self) -> Message:
        message = super().message()
        for part in message.walk():
            if part.is_multipart():
                part.set_boundary(f"=_{uuid.uuid4().hex}")
        return message


def email_build(
    *, to: str, subject: str, template: str, context: Mapping[str, Any]
) -> EmailMultiAlternatives:
    """``template`` names ``emails/<template>.txt`` and ``emails/<template>.html``."""
    context = {"site_url": settings.SITE_URL.rstrip("/"), **context}
    message = _Email(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    return message


def emails_send(messages: Sequence[EmailMessage], connection: Any = None) -> int:
    """Send each message over ``connection`` (or one opened here); returns how
    many the mail server took.

    A message whose every recipient the server refuses (a mistyped or closed
    address) is logged and left out: sending it again would not help, and
    failing here would send the others again on the retry, and stop at the
    same address every time. Any other failure (the server down, the
    connection lost) raises, so the caller tries again later.
    """
    if connection is None:
        with get_connection() as opened:
            return emails_send(messages, opened)
    sent = 0
    for message in messages:
        try:
            sent += connection.send_messages([message]) or 0
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(f"{to} ({code})" for to, (code, _) in exc.recipients.items())
            log.warning("e-mail %r not sent: the mail server refuses %s", message.subject, refused)
    return sent


def email_send(*, to: str, subject: str, template: str, context: Mapping[str, Any]) -> None:
    # A failed send fails the handler, so the event is retried; a refused
    # address is not a failure (see emails_send).
    emails_send([email_build(to=to, subject=subject, template=template, context=context)])
