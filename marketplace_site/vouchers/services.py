"""Granting vouchers from purchase events (the worker's side) and redeeming them at checkout."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from bookstore.events.v1 import events_pb2
from events.contracts import Event
from marketplace_site.notifications.emails import email_send, site_url
from marketplace_site.notifications.services import customer_get
from marketplace_site.orders.models import Order
from marketplace_site.vouchers.models import PurchaseCount, Voucher, VoucherRule
from marketplace_site.vouchers.selectors import VoucherInvalid

log = logging.getLogger(__name__)

# No 0/O or 1/I: customers type these codes from an e-mail.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# 32 symbols ** 16 = 2 ** 80 codes: not worth guessing.
CODE_LENGTH = 16


def voucher_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def voucher_grant_if_due(event: Event) -> None:
    """Count this purchase; on the Nth, grant and e-mail each matching rule's
    voucher. Runs inside the inbox transaction, so a redelivered event counts
    nothing and grants nothing; an e-mail failure rolls the grant back."""
    payload: events_pb2.PurchaseCompleted = event.payload
    user = customer_get(payload.user_id)
    purchases = _purchase_count_increment(user.pk)
    now = timezone.now()
    for rule in VoucherRule.objects.filter(active=True, nth_purchase=purchases).order_by("id"):
        # The unique (rule, owner) backs this up; a rule edited to a larger N
        # must not grant its customers a second voucher.
        if Voucher.objects.filter(rule=rule, owner=user).exists():
            continue
        voucher = Voucher.objects.create(
            code=voucher_code_new(),
            owner=user,
            rule=rule,
            percent_off=rule.percent_off,
            granted_for_order_id=payload.order_id,
            granted_at=now,
            expires_at=now + timedelta(days=rule.valid_days) if rule.valid_days else None,
        )
        _voucher_email(voucher, user.email)


def _purchase_count_increment(user_id: int) -> int:
    # The row lock serializes one customer's purchase events across workers,
    # so two of them cannot both read N-1 and both see N.
    counter, _ = PurchaseCount.objects.select_for_update().get_or_create(user_id=user_id)
    counter.purchases += 1
    counter.save(update_fields=["purchases"])
    return counter.purchases


def _voucher_email(voucher: Voucher, address: str) -> None:
    if not address:
        log.info(
            "voucher %s granted to user %s, who has no e-mail address", voucher.pk, voucher.owner_id
        )
        return
    email_send(
        to=address,
        subject=f"A voucher for you: {voucher.percent_label}% off your next order",
        template="voucher_granted",
        context={"voucher": voucher, "cart_url": site_url(reverse("cart"))},
    )


def voucher_redeem(*, voucher: Voucher, order: Order) -> None:
    """Mark ``voucher`` used by ``order``, inside the checkout's transaction
    (after voucher_usable(lock=True) found it usable)."""
    used = Voucher.objects.filter(pk=voucher.pk, used_by_order__isnull=True).update(
        used_by_order=order
    )
    if not used:
        raise VoucherInvalid(f"Voucher {voucher.code} was just used on another order.")
