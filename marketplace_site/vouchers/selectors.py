"""Which voucher a customer may use now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from marketplace_site.vouchers.models import Voucher


class VoucherInvalid(ValueError):
    """The code cannot be used by this customer now; the message is for them."""


def voucher_code_normalize(code: str) -> str:
    """Codes are shown in groups and read aloud: case, spaces and dashes do not count."""
    return "".join(code.split()).replace("-", "").upper()


def voucher_usable(
    *,
    user: User | AnonymousUser,
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


@dataclass(frozen=True, slots=True)
class CustomerVouchers:
    available: list[Voucher]
    used: list[Voucher]
    expired: list[Voucher]


def vouchers_of(*, user: User, now: datetime | None = None) -> CustomerVouchers:
    """The customer's vouchers, newest first: those they can use now, those
    used (with the order), those expired unused."""
    now = now or timezone.now()
    available, used, expired = [], [], []
    for voucher in Voucher.objects.filter(owner_id=user.pk):
        if voucher.used_by_order_id is not None:
            used.append(voucher)
        elif voucher.expires_at is not None and voucher.expires_at <= now:
            expired.append(voucher)
        else:
            available.append(voucher)
    return CustomerVouchers(available, used, expired)
