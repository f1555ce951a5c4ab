"""Granting vouchers from purchase events (the worker's side) and redeeming them at checkout."""

from __future__ import annotations

import hmac
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse
from django.utils import timezone

from bookstore.events.v1 import events_pb2
from events.contracts import Event
from marketplace_site.accounts.selectors import purchase_customers
from marketplace_site.counters import counters_add
from marketplace_site.emails import email_send, site_url
from marketplace_site.vouchers.models import PurchaseCount, Voucher, VoucherRule
from marketplace_site.vouchers.selectors import VoucherInvalid

log = logging.getLogger(__name__)

# No 0/O or 1/I: customers type these codes from an e-mail.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# 32 symbols ** 16 = 2 ** 80 codes: not worth guessing.
CODE_LENGTH = 16


def voucher_code_for(*, rule_id: int, owner_id: int) -> str:
    """The code of the rule's voucher for this customer (each gets one): the
    same every time it is made, so an e-mail sent by a grant whose batch then
    rolled back names the code the retry creates, not one that never
    existed. Unguessable without the site's SECRET_KEY."""
    digest = hmac.digest(
        settings.SECRET_KEY.encode(), f"voucher:{rule_id}:{owner_id}".encode(), "sha256"
    )
    number = int.from_bytes(digest[:10], "big")  # 80 bits: 16 symbols of 5
    return "".join(CODE_ALPHABET[number >> (5 * i) & 31] for i in range(CODE_LENGTH))


def voucher_grant_if_due(events: Sequence[Event]) -> None:
    """Count these purchases; on a customer's Nth, grant and e-mail each
    matching rule's voucher. Runs inside the inbox transaction, so a
    redelivered event counts nothing and grants nothing; an e-mail failure
    rolls the grants back."""
    users = purchase_customers(events)
    bought = Counter(event.payload.user_id for event in events)
    # The upsert's row lock serializes one customer's purchase events across
    # workers, so two of them cannot both count to N.
    counted = dict(
        counters_add(
            PurchaseCount,
            key=("user",),
            rows={(user_id,): {"purchases": n} for user_id, n in bought.items()},
            add=("purchases",),
            returning=("purchases",),
        )
    )
    rules: dict[int, list[VoucherRule]] = defaultdict(list)
    for rule in VoucherRule.objects.filter(active=True).order_by("id"):
        rules[rule.nth_purchase].append(rule)
    if not rules:
        return
    # Each customer's count before this batch, then one more per event in order.
    purchases = {user_id: counted[user_id] - n for user_id, n in bought.items()}
    now = timezone.now()
    for event in events:
        payload: events_pb2.PurchaseCompleted = event.payload
        purchases[payload.user_id] += 1
        for rule in rules.get(purchases[payload.user_id], ()):
            _voucher_grant(rule, users[payload.user_id], payload.order_id, now)


def _voucher_grant(rule: VoucherRule, user: AbstractBaseUser, order_id: int, now: datetime) -> None:
    # The unique (rule, owner) backs this up; a rule edited to a larger N
    # must not grant its customers a second voucher.
    if Voucher.objects.filter(rule=rule, owner=user).exists():
        return
    voucher = Voucher.objects.create(
        code=voucher_code_for(rule_id=rule.pk, owner_id=user.pk),
        owner=user,
        rule=rule,
        percent_off=rule.percent_off,
        granted_for_order_id=order_id,
        granted_at=now,
        expires_at=now + timedelta(days=rule.valid_days) if rule.valid_days else None,
    )
    _voucher_email(voucher, user.email)


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


def voucher_redeem(*, voucher: Voucher, order_id: int) -> None:
    """Mark ``voucher`` used by order ``order_id``, inside the checkout's
    transaction (after voucher_usable(lock=True) found it usable)."""
    used = Voucher.objects.filter(pk=voucher.pk, used_by_order__isnull=True).update(
        used_by_order_id=order_id
    )
    if not used:
        raise VoucherInvalid(f"Voucher {voucher.code} was just used on another order.")
