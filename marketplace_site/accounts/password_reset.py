"""The password reset e-mail, made and sent by the worker."""

from __future__ import annotations

from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from marketplace_site.emails import email_build, emails_send, site_url


def password_reset_send(*, email: str) -> int:
    """E-mail a link to set a new password to each account that may reset
    its password with ``email`` (Django's rules: active, with a usable
    password); to none if there is none. Returns how many were sent.

    The link's token is made here, in the worker, so no message on the
    broker carries one.
    """
    messages = []
    for user in PasswordResetForm().get_users(email):
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
        link = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
        messages.append(
            email_build(
                to=user.email,
                subject="Set a new password",
                template="password_reset",
                context={"user": user, "reset_url": site_url(link)},
            )
        )
    return emails_send(messages) if messages else 0
