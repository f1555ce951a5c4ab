"""Account requests the site takes on behalf of visitors."""

from __future__ import annotations

import logging

from django.conf import settings
from kombu.exceptions import OperationalError

from marketplace_site.clients import client_network
from marketplace_site.notifications.tasks import send_password_reset
from marketplace_site.throttle import ThrottleUnavailable, throttle_allows

log = logging.getLogger(__name__)


class PasswordResetRefused(Exception):
    """No reset e-mail is sent; the message says why without saying whether
    any account has the address."""


class PasswordResetThrottled(PasswordResetRefused):
    pass


class PasswordResetUnavailable(PasswordResetRefused):
    pass


def password_reset_request(*, email: str, client: str) -> None:
    """Have the worker e-mail a reset link to the accounts with ``email``.

    The same for every address, with an account or not: both throttles count
    it, and the worker looks the accounts up, so neither the answer nor its
    time tells them apart. Raises PasswordResetThrottled past either limit.
    """
    window = settings.PASSWORD_RESET_WINDOW
    try:
        # Both are counted whatever the other says: an attacker spreading
        # requests over addresses or over clients is held by one of them.
        by_address = throttle_allows(
            scope="password-reset:address",
            key=email.strip().casefold(),
            limit=settings.PASSWORD_RESET_PER_ADDRESS,
            window=window,
        )
        by_client = throttle_allows(
            scope="password-reset:client",
            key=client_network(client),
            limit=settings.PASSWORD_RESET_PER_CLIENT,
            window=window,
        )
    except ThrottleUnavailable as exc:
        log.error("password reset refused: %s", exc)
        raise PasswordResetUnavailable(
            "Password resets are unavailable right now; please try again in a few minutes."
        ) from exc
    if not (by_address and by_client):
        raise PasswordResetThrottled(
            "Too many password reset requests for this address or from your network; "
            "please try again in an hour."
        )
    try:
        send_password_reset.delay(email=email)
    except OperationalError as exc:
        log.error("password reset not queued, the broker is unavailable: %s", exc)
        raise PasswordResetUnavailable(
            "Password resets are unavailable right now; please try again in a few minutes."
        ) from exc
