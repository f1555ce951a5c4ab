"""Books to recommend on a page: from the recommender, or the shop's best sellers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from marketplace_site.catalog.models import Book
from marketplace_site.catalog.selectors import (
    UnitsSold,
    best_sellers,
    best_sellers_by_category,
    books_in_order,
)
from marketplace_site.metrics import BREAKER_OPEN, RECOMMENDER_CALLS
from marketplace_site.orders.selectors import Purchases, customer_purchases
from marketplace_site.recommendations.breaker import CLOSED
from marketplace_site.recommendations.channel import ChannelSecurity
from marketplace_site.recommendations.client import (
    RecommendedBook,
    RecommenderClient,
    RecommenderUnavailable,
)
from marketplace_site.recommendations.reasons import BEST_SELLER, why_recommended

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

log = logging.getLogger(__name__)

_client: RecommenderClient | None = None

# The recommender's answers, per process, for RECOMMENDATIONS_CACHE_SECONDS:
# (user id, category, max_results, latest order id) -> (expires at, books). A
# page view then costs no call for a customer browsing around; fallbacks are
# never kept. The customer's latest order is in the key, so their next page
# after an order asks again, in whichever process serves it.
_answers: dict[tuple[int, int, int, int], tuple[float, list[RecommendedBook]]] = {}
ANSWERS_KEPT = 10_000
# A gthread worker's threads share the answers: trimming them while another
# thread adds one would fail its page ("dictionary changed size").
_answers_lock = threading.Lock()
NO_PURCHASES = Purchases(frozenset())


def _breaker_changed(old: str, new: str) -> None:
    """Mirrors the breaker's state in a gauge, and logs each change."""
    BREAKER_OPEN.set(0 if new == CLOSED else 1)
    log.warning("recommender circuit breaker: %s -> %s", old, new)


def recommender_client() -> RecommenderClient:
    """The process's client, built from settings on first use."""
    global _client
    if _client is None:
        _client = RecommenderClient(
            target=settings.RECOMMENDER_TARGET,
            timeout=settings.RECOMMENDER_TIMEOUT,
            breaker_failures=settings.RECOMMENDER_BREAKER_FAILURES,
            breaker_reset=settings.RECOMMENDER_BREAKER_RESET,
            security=ChannelSecurity.from_settings(),
            on_breaker_change=_breaker_changed,
        )
    return _client


def reset_recommender_client() -> None:
    """Forget the client (after settings change, e.g. in tests)."""
    global _client
    if _client is not None:
        _client.close()
    _client = None
    _answers.clear()


def _recommend(
    *,
    user_id: int,
    category: int,
    max_results: int,
    correlation_id: str,
    purchases: Purchases = NO_PURCHASES,
) -> list[RecommendedBook]:
    """The recommender's answer, from this process's short-lived cache when fresh."""
    key = (user_id, category, max_results, purchases.latest_order_id)
    now = time.monotonic()
    kept = _answers.get(key)
    if kept is not None and kept[0] > now:
        RECOMMENDER_CALLS.labels(outcome="cached").inc()
        return kept[1]
    answer = recommender_client().recommend(
        user_id=user_id, category=category, max_results=max_results, correlation_id=correlation_id
    )
    RECOMMENDER_CALLS.labels(outcome="ok").inc()
    ttl = settings.RECOMMENDATIONS_CACHE_SECONDS
    if ttl > 0 and not _just_ordered(purchases, ttl):
        with _answers_lock:
            if len(_answers) >= ANSWERS_KEPT:
                for stale in [k for k, (expires, _) in _answers.items() if expires <= now]:
                    del _answers[stale]
                if len(_answers) >= ANSWERS_KEPT:
                    del _answers[next(iter(_answers))]  # the oldest
            _answers[key] = (now + ttl, answer)
    return answer


def _just_ordered(purchases: Purchases, ttl: float) -> bool:
    """Whether the latest order is younger than an answer is kept: the
    recommender learns it from an event a moment later, and an answer from
    before would be kept for the whole ttl."""
    placed = purchases.latest_order_at
    return placed is not None and timezone.now() - placed < timedelta(seconds=ttl)


@dataclass(frozen=True, slots=True)
class Pick:
    book: Book
    # Why it is shown, as its card says it ("Bought with Dune", "Best seller"); "" for nothing.
    why: str = ""


RECOMMENDER = "recommender"
BEST_SELLERS = "best-sellers"


@dataclass
class Recommendations:
    picks: list[Pick] = field(default_factory=list)
    # Where they come from: the recommender, or the shop's own best sellers.
    source: str = RECOMMENDER
    # True when the recommender could not answer and best sellers stand in.
    fallback: bool = False

    @property
    def books(self) -> list[Book]:
        return [pick.book for pick in self.picks]


def _as_best_sellers(
    books: list[WithAnnotations[Book, UnitsSold]], *, fallback: bool = False
) -> Recommendations:
    """Books from best_sellers*(): a best seller is one that has sold."""
    picks = [Pick(book, BEST_SELLER if book.units else "") for book in books]
    return Recommendations(picks, source=BEST_SELLERS, fallback=fallback)


def _best_sellers_for(
    purchases: Purchases, category_code: int, exclude: tuple[int, ...], limit: int
) -> Recommendations:
    """The fallback: the shop's own best sellers the customer has not bought."""
    excluded = {*purchases.book_ids, *exclude}
    books = best_sellers(category_code=category_code, exclude=excluded, limit=limit)
    return _as_best_sellers(books, fallback=True)


def recommendations_for(
    *,
    user: User | AnonymousUser,
    category_code: int | None,
    limit: int,
    correlation_id: str = "",
    exclude: tuple[int, ...] = (),
) -> Recommendations:
    """Never raises because of the recommender: a failure shows best sellers.

    ``category_code`` None is the home page without a category: a customer
    gets recommendations from their latest purchase's category, an anonymous
    visitor the shop's best sellers of every category (the recommender knows
    nothing about them to choose a category by)."""
    if category_code is None:
        if not user.is_authenticated:
            return _as_best_sellers(best_sellers_by_category(limit=limit))
        category_code = default_category_code(user=user)
    purchases = customer_purchases(user=user)
    if not settings.RECOMMENDATIONS_ENABLED:
        # Switched off by the operator: the shop's own best sellers, no call.
        return _best_sellers_for(purchases, category_code, exclude, limit)
    try:
        answer = _recommend(
            user_id=user.pk if user.is_authenticated else 0,
            category=category_code,
            max_results=limit + len(exclude),
            correlation_id=correlation_id,
            purchases=purchases,
        )
    except RecommenderUnavailable as exc:
        RECOMMENDER_CALLS.labels(outcome=exc.reason).inc()
        log.warning("recommender unavailable (%s); showing best sellers", exc)
        return _best_sellers_for(purchases, category_code, exclude, limit)
    # The answer may predate the customer's latest purchase (the recommender
    # not told yet): never offer what they own.
    owned = purchases.book_ids
    shown = [r for r in answer if r.id not in exclude and r.id not in owned]
    books = {book.pk: book for book in books_in_order([r.id for r in shown])}
    picks = [
        Pick(books[r.id], why_recommended(reason=r.reason, bought_with_title=r.bought_with_title))
        for r in shown
        if r.id in books
    ]
    return Recommendations(picks[:limit])


def default_category_code(*, user: User | AnonymousUser) -> int:
    """The category to recommend from when the page has none: the customer's
    latest purchase's, else the first category."""
    if user.is_authenticated:
        latest = (
            Book.objects.filter(order_lines__order__user=user)
            .order_by("-order_lines__order__created_at", "-order_lines__id")
            .values_list("category__code", flat=True)
            .first()
        )
        if latest is not None:
            return latest
    return 0
