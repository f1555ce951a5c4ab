"""Which voucher a customer may use now."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from marketplace_site.vouchers.models import Voucher


class VoucherInvalid(ValueError):
    """The code cannot be used by this customer now; the message is for them."""


def voucher_code_normalize(code: str) -> str:
    """Codes are shown in groups and read aloud: case, spaces and dashes do not count."""
    return "".join(code.split()).replace("-", "").upper()


def voucher_usable(
    *,
    user: AbstractBaseUser | AnonymousUser,
    code: str,
    lock: bool = False,
    now: datetime | None = None,
) -> Voucher:
    """The customer's own voucher with this code, unused and unexpired.

    With ``lock`` (checkout, inside its transaction) the row stays locked until
    commit, so a concurrent checkout with the same code waits and then sees it used.
    """
    normalized = voucher_code_normalize(code)
    # Messages quote the code as the customer typed it, to compare with what they see.
    typed = code.strip()
    if not user.is_authenticated:
        raise VoucherInvalid("Please log in to use a voucher.")
    vouchers = Voucher.objects.select_for_update() if lock else Voucher.objects.all()
    # Another customer's code gets the same answer as a made-up one: codes
    # cannot be probed for existence.
    voucher = vouchers.filter(code=normalized, owner_id=user.pk).first() if normalized else None
    if voucher is None:
        raise VoucherInvalid(f"There is no voucher “{typed}” on your account.")
    if voucher.used_by_order_id is not None:
        raise VoucherInvalid(
            f"Voucher {typed} was already used on order #{voucher.used_by_order_id}."
        )
    now = now or timezone.now()
    if voucher.expires_at is not None and voucher.expires_at <= now:
        raise VoucherInvalid(
            f"Voucher {typed} expired on {timezone.localdate(voucher.expires_at):%Y-%m-%d}."
        )
    return voucher
