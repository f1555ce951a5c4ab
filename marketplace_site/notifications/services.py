"""E-mails to customers: the order confirmation (an event handler) and the weekly digest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.urls import reverse

from bookstore.events.v1 import events_pb2
from events.contracts import Event
from marketplace_site.notifications.emails import email_build, site_url
from marketplace_site.notifications.recommender_stream import BatchRequest, StreamRecommender
from marketplace_site.notifications.selectors import digest_recipients
from marketplace_site.recommendations.channel import ChannelSecurity
from marketplace_site.recommendations.client import RecommendedBook

log = logging.getLogger(__name__)

DIGEST_MAX_RESULTS = 5


class UnknownCustomer(LookupError):
    """The event names a customer this database does not have."""


def customers_get(user_ids: Iterable[int]) -> dict[int, AbstractBaseUser]:
    """The customers by id; raises UnknownCustomer naming any that do not exist."""
    wanted = set(user_ids)
    users = get_user_model().objects.in_bulk(wanted)
    missing = sorted(wanted - users.keys())
    if missing:
        raise UnknownCustomer(f"user {', '.join(map(str, missing))} does not exist")
    return users


def order_confirmation_send(events: Sequence[Event]) -> None:
    """E-mail each customer what they bought (a PurchaseCompleted handler).

    Sent inside the inbox transaction, every message built before the first
    is sent, over one connection: if sending fails nothing is recorded and the
    events are retried; a crash between sending and commit can repeat an
    e-mail, which beats losing it.
    """
    users = customers_get(event.payload.user_id for event in events)
    messages = []
    for event in events:
        payload: events_pb2.PurchaseCompleted = event.payload
        user = users[payload.user_id]
        if not user.email:
            log.info("order %s: user %s has no e-mail address", payload.order_id, user.pk)
            continue
        messages.append(_order_confirmation(payload, user))
    if messages:
        get_connection().send_messages(messages)


def _order_confirmation(
    payload: events_pb2.PurchaseCompleted, user: AbstractBaseUser
) -> EmailMultiAlternatives:
    subtotal, discount, total = (
        Decimal(payload.subtotal),
        Decimal(payload.discount),
        Decimal(payload.total),
    )
    return email_build(
        to=user.email,
        subject=f"Your order #{payload.order_id} is confirmed",
        template="order_confirmation",
        context={
            "user": user,
            "order_id": payload.order_id,
            "order_url": site_url(reverse("order-detail", args=[payload.order_id])),
            "lines": payload.lines,
            "currency": payload.currency,
            "subtotal": subtotal,
            "discount": discount,
            "voucher_code": payload.voucher_code,
            # The event carries the promotion's discount; the voucher's is the rest.
            "voucher_discount": subtotal - discount - total,
            "total": total,
        },
    )


class BatchRecommender(Protocol):
    def recommend_many(self, requests: Sequence[BatchRequest]) -> list[list[RecommendedBook]]: ...


def recommender_stream() -> BatchRecommender:
    return StreamRecommender(
        target=settings.RECOMMENDER_TARGET,
        timeout=settings.RECOMMENDER_DIGEST_TIMEOUT,
        security=ChannelSecurity.from_settings(),
    )


def digest_send_all(*, client_factory: Callable[[], BatchRecommender] = recommender_stream) -> int:
    """E-mail every customer their "books for you"; returns how many e-mails went out.

    All answers are collected before the first e-mail: if the recommender
    fails, this raises RecommenderUnavailable having sent nothing, so a rerun
    does not e-mail anyone twice. Customers with no recommendation get no e-mail.
    """
    customers = list(digest_recipients())
    if not customers:
        return 0
    answers = client_factory().recommend_many(
        [
            BatchRequest(
                user_id=customer.pk,
                category=customer.latest_category or 0,
                max_results=DIGEST_MAX_RESULTS,
            )
            for customer in customers
        ]
    )
    messages = [
        email_build(
            to=customer.email,
            subject="Books for you this week",
            template="digest",
            context={
                "user": customer,
                "books": [
                    {"title": book.title, "author": book.author, "url": _book_url(book.id)}
                    for book in books
                ],
            },
        )
        for customer, books in zip(customers, answers, strict=True)
        if books
    ]
    sent = get_connection().send_messages(messages) if messages else 0
    log.info("weekly digest: %d e-mails to %d customers", sent, len(customers))
    return sent


def _book_url(book_id: int) -> str:
    return site_url(reverse("book-detail", args=[book_id]))
