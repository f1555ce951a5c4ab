"""E-mails to customers: the order confirmation and status (event handlers), and
the weekly digest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.urls import reverse
from django.utils import timezone

from bookstore.events.v1 import events_pb2
from events.contracts import Event
from marketplace_site.accounts.selectors import event_customers, purchase_customers
from marketplace_site.emails import email_build, emails_send, site_url
from marketplace_site.notifications.models import DigestDelivery
from marketplace_site.notifications.recommender_stream import BatchRequest, StreamRecommender
from marketplace_site.notifications.selectors import digest_recipients
from marketplace_site.recommendations.channel import ChannelSecurity
from marketplace_site.recommendations.client import RecommendedBook

log = logging.getLogger(__name__)

DIGEST_MAX_RESULTS = 5
# E-mails sent over one connection before they are recorded as delivered: a
# worker lost mid-run sends at most this many twice when the task reruns.
DIGEST_CHUNK = 100


def order_confirmation_send(events: Sequence[Event]) -> None:
    """E-mail each customer what they bought (a PurchaseCompleted handler).

    Sent inside the inbox transaction, every message built before the first
    is sent, over one connection: if sending fails nothing is recorded and the
    events are retried; a crash between sending and commit can repeat an
    e-mail, which beats losing it.
    """
    users = purchase_customers(events)
    messages = []
    for event in events:
        payload: events_pb2.PurchaseCompleted = event.payload
        user = users[payload.user_id]
        if not user.email:
            log.info("order %s: user %s has no e-mail address", payload.order_id, user.pk)
            continue
        messages.append(_order_confirmation(payload, user))
    if messages:
        emails_send(messages)


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


# What the e-mail says each status means to the customer: subject, then the news.
STATUS_NEWS = {
    events_pb2.ORDER_STATUS_SHIPPED: ("Your order #{order_id} is on its way", "has shipped"),
    events_pb2.ORDER_STATUS_DELIVERED: ("Your order #{order_id} was delivered", "was delivered"),
}


def order_status_send(events: Sequence[Event]) -> None:
    """E-mail each customer their order's new status (an OrderStatusChanged
    handler), as order_confirmation_send does: every message built first,
    sent over one connection, inside the inbox transaction."""
    users = event_customers(events)
    messages = []
    for event in events:
        payload: events_pb2.OrderStatusChanged = event.payload
        user = users[payload.user_id]
        news = STATUS_NEWS.get(payload.status)
        if news is None or not user.email:
            # Placed is the confirmation's news; no address, no e-mail.
            log.info("order %s: no status e-mail to user %s", payload.order_id, user.pk)
            continue
        subject, happened = news
        messages.append(
            email_build(
                to=user.email,
                subject=subject.format(order_id=payload.order_id),
                template="order_status",
                context={
                    "user": user,
                    "order_id": payload.order_id,
                    "happened": happened,
                    "order_url": site_url(reverse("order-detail", args=[payload.order_id])),
                },
            )
        )
    if messages:
        emails_send(messages)


class BatchRecommender(Protocol):
    def recommend_many(self, requests: Sequence[BatchRequest]) -> list[list[RecommendedBook]]: ...


def recommender_stream() -> BatchRecommender:
    return StreamRecommender(
        target=settings.RECOMMENDER_TARGET,
        timeout=settings.RECOMMENDER_DIGEST_TIMEOUT,
        security=ChannelSecurity.from_settings(),
    )


def digest_send_all(
    *,
    client_factory: Callable[[], BatchRecommender] = recommender_stream,
    now: datetime | None = None,
) -> int:
    """E-mail every customer their "books for you"; returns how many e-mails went out.

    Once a week per customer: whoever got this ISO week's digest is skipped,
    so a rerun (Celery redelivers the task when a worker is lost) goes on
    where the last run stopped; e-mails are recorded DIGEST_CHUNK at a time,
    right after they are sent. All answers are collected before the first
    e-mail: if the recommender fails, this raises RecommenderUnavailable
    having sent nothing. Customers with no recommendation get no e-mail.
    """
    week = digest_week(now or timezone.now())
    customers = list(digest_recipients().exclude(digestdelivery__week=week))
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
    due = [(c, books) for c, books in zip(customers, answers, strict=True) if books]
    sent = 0
    if due:
        connection = get_connection()
        with connection:  # one connection for every chunk
            for start in range(0, len(due), DIGEST_CHUNK):
                chunk = due[start : start + DIGEST_CHUNK]
                sent += emails_send([_digest(c, books) for c, books in chunk], connection)
                # A refused address counts as done: it would stop every rerun.
                DigestDelivery.objects.bulk_create(
                    [DigestDelivery(user=c, week=week) for c, _ in chunk], ignore_conflicts=True
                )
    log.info("weekly digest %s: %d e-mails to %d customers", week, sent, len(customers))
    return sent


def digest_week(moment: datetime) -> str:
    """The ISO week of ``moment`` in the shop's time zone, e.g. "2026-W48"."""
    year, week, _ = timezone.localtime(moment).isocalendar()
    return f"{year}-W{week:02d}"


def _digest(customer: AbstractBaseUser, books: list[RecommendedBook]) -> EmailMultiAlternatives:
    return email_build(
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


def _book_url(book_id: int) -> str:
    return site_url(reverse("book-detail", args=[book_id]))
