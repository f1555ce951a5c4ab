"""Building e-mails from templates: a plain-text body and an HTML alternative."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


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
