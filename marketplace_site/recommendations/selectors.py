"""Books to recommend on a page: from the recommender, or the shop's best sellers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
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

# The recommender's answers are kept for RECOMMENDATIONS_CACHE_SECONDS in
# Django's cache (CACHE_URL: each process its own by default, Redis shared by
# every process when set), per (user, category, size, latest order). A page
# view then costs no call for a customer browsing around; fallbacks are never
# kept. The customer's latest order is in the key, so their next page after an
# order asks again, in whichever process serves it.
ANSWERS_KEY = "recommendations:answer:v1:{user}:{category}:{size}:{order}"
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


def _recommend(
    *,
    user_id: int,
    category: int,
    max_results: int,
    purchases: Purchases = NO_PURCHASES,
) -> list[RecommendedBook]:
    """The recommender's answer, from the cache when one is kept."""
    key = ANSWERS_KEY.format(
        user=user_id, category=category, size=max_results, order=purchases.latest_order_id
    )
    kept = _cached(key)
    if kept is not None:
        RECOMMENDER_CALLS.labels(outcome="cached").inc()
        return kept
    answer = recommender_client().recommend(
        user_id=user_id, category=category, max_results=max_results
    )
    RECOMMENDER_CALLS.labels(outcome="ok").inc()
    ttl = settings.RECOMMENDATIONS_CACHE_SECONDS
    if ttl > 0 and not _just_ordered(purchases, ttl):
        _keep(key, answer, ttl)
    return answer


def _cached(key: str) -> list[RecommendedBook] | None:
    """A kept answer; none when the cache cannot be reached (the page asks instead)."""
    try:
        kept: list[RecommendedBook] | None = cache.get(key)
    except Exception as exc:  # each backend raises its own client's errors
        log.warning("recommendations: the cache cannot be read (%s); asking", type(exc).__name__)
        return None
    return kept


def _keep(key: str, answer: list[RecommendedBook], ttl: float) -> None:
    try:
        cache.set(key, answer, timeout=ttl)
    except Exception as exc:  # the answer is served all the same
        log.warning("recommendations: the cache cannot be written (%s)", type(exc).__name__)


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
