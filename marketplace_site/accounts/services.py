"""Account requests the site takes on behalf of visitors."""

from __future__ import annotations

import logging

from amqp.exceptions import AMQPError
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from kombu.exceptions import KombuError

from marketplace_site.accounts.tasks import send_password_reset
from marketplace_site.clients import client_network
from marketplace_site.throttle import ThrottleUnavailable, throttle_allows

log = logging.getLogger(__name__)


class AddressTaken(Exception):
    """Another account has the address (the unique index on lower(email) said so)."""


def account_email_change(*, user: AbstractBaseUser, email: str) -> None:
    """Give the account a new address, normalized (accounts/addresses.py).
    Raises AddressTaken when another account has it, even one that took it
    after the form was checked: the database's index decides."""
    before, user.email = user.email, email
    try:
        with transaction.atomic():
            user.save(update_fields=["email"])
    except IntegrityError as exc:
        user.email = before
        raise AddressTaken(email) from exc


class PasswordResetRefused(Exception):
    """No reset e-mail is sent; the message says why without saying whether
    any account has the address."""


class PasswordResetThrottled(PasswordResetRefused):
    pass


class PasswordResetUnavailable(PasswordResetRefused):
    pass


UNAVAILABLE = "Password resets are unavailable right now; please try again in a few minutes."


def password_reset_request(*, email: str, client: str) -> None:
    """Have the worker e-mail a reset link to the accounts with ``email``.

    The same for every address, with an account or not: every throttle counts
    it, and the worker looks the accounts up, so neither the answer nor its
    time tells them apart. Raises PasswordResetThrottled past any limit.
    """
    window = settings.PASSWORD_RESET_WINDOW
    address, network = email.strip().casefold(), client_network(client)
    limits = (
        # An address from one client: a stranger using up this allowance
        # leaves the owner's own requests, from elsewhere, untouched.
        ("password-reset:address-client", f"{address} {network}", "PER_ADDRESS"),
        # An address from anywhere, higher: a flood of one mailbox from many clients.
        ("password-reset:address", address, "PER_ADDRESS_TOTAL"),
        # A client, over any addresses.
        ("password-reset:client", network, "PER_CLIENT"),
    )
    try:
        # Each is counted whatever the others say: an attacker spreading
        # requests over addresses or over clients is held by one of them.
        allowed = [
            throttle_allows(
                scope=scope,
                key=key,
                limit=getattr(settings, f"PASSWORD_RESET_{limit}"),
                window=window,
            )
            for scope, key, limit in limits
        ]
    except ThrottleUnavailable as exc:
        log.error("password reset refused: %s", exc)
        raise PasswordResetUnavailable(UNAVAILABLE) from exc
    if not all(allowed):
        raise PasswordResetThrottled(
            "Too many password reset requests for this address or from your network; "
            "please try again in an hour."
        )
    try:
        send_password_reset.delay(email=email)
    except (KombuError, AMQPError) as exc:  # unreachable, or refusing the queue
        log.error("password reset not queued, the broker is unavailable: %s", exc)
        raise PasswordResetUnavailable(UNAVAILABLE) from exc
