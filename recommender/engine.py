"""Ranking: which books to recommend to whom. Pure Python, no I/O, no gRPC.

The index holds the catalog and the purchase history in memory, shaped for
answering one question fast: given a user and a category, which books?

1. Books bought in the same orders as the user's own purchases (co-purchase),
   the most often bought together first.
2. The category's best sellers, by units sold.
3. The rest of the category, in catalog (id) order.

Never a book the user already bought, never an inactive book, each book
once, ties broken by id so the same state always gives the same answer.
"""

from __future__ import annotations

import enum
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_MAX_RESULTS = 10
MAX_RESULTS_CAP = 50
# A best seller sits in tens of thousands of orders; its most recent ones say
# as much about what goes with it, and bound the cost of a call.
RECENT_ORDERS_PER_BOOK = 200


class Category(enum.IntEnum):
    """Mirrors bookstore.recommendations.v1.BookCategory (a test keeps them equal)."""

    MYSTERY = 0
    SCIENCE_FICTION = 1
    SELF_HELP = 2
    FANTASY = 3
    HISTORY = 4
    BIOGRAPHY = 5
    ROMANCE = 6


class Reason(enum.IntEnum):
    BOUGHT_TOGETHER = 0
    BEST_SELLER = 1
    CATALOG = 2


class InvalidRequest(ValueError):
    """The request cannot be answered as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Book:
    id: int
    title: str
    author: str
    category: Category
    active: bool = True


@dataclass(frozen=True, slots=True)
class Purchase:
    order_id: int
    user_id: int
    book_id: int
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Recommendation:
    book: Book
    reason: Reason


def parse_category(value: int) -> Category:
    try:
        return Category(value)
    except ValueError:
        known = ", ".join(f"{c.name}={c.value}" for c in Category)
        raise InvalidRequest(f"unknown category {value}; known: {known}") from None


def effective_max_results(requested: int) -> int:
    """0 means the default; above the cap is served as the cap (AIP-158 page size)."""
    if requested < 0:
        raise InvalidRequest(f"max_results must be >= 0, got {requested}")
    if requested == 0:
        return DEFAULT_MAX_RESULTS
    return min(requested, MAX_RESULTS_CAP)


class RecommendationIndex:
    """The in-memory read model. Feed it books and purchases, then ask it.

    Purchases must be fed once each (the store guarantees that); books may be
    fed again to change them.
    """

    def __init__(self) -> None:
        self._books: dict[int, Book] = {}
        self._units_sold: Counter[int] = Counter()
        # array() per key: a tenth of the memory of a list of ints at 1M purchases.
        self._orders_of_book: dict[int, array] = {}
        self._books_of_order: dict[int, array] = {}
        self._books_of_user: dict[int, array] = {}
        # Category -> its books by (-units sold, id); rebuilt lazily after changes.
        self._ranked: dict[Category, list[int]] = {}

    @classmethod
    def build(cls, books: Iterable[Book], purchases: Iterable[Purchase]) -> RecommendationIndex:
        index = cls()
        for book in books:
            index.upsert_book(book)
        for purchase in purchases:
            index.add_purchase(purchase)
        return index

    def __len__(self) -> int:
        return len(self._books)

    @property
    def purchase_count(self) -> int:
        return sum(len(books) for books in self._books_of_order.values())

    def book(self, book_id: int) -> Book | None:
        return self._books.get(book_id)

    def upsert_book(self, book: Book) -> None:
        previous = self._books.get(book.id)
        self._books[book.id] = book
        self._ranked.pop(book.category, None)
        if previous is not None:
            self._ranked.pop(previous.category, None)

    def add_purchase(self, purchase: Purchase) -> None:
        self._units_sold[purchase.book_id] += purchase.quantity
        self._orders_of_book.setdefault(purchase.book_id, array("q")).append(purchase.order_id)
        self._books_of_order.setdefault(purchase.order_id, array("i")).append(purchase.book_id)
        self._books_of_user.setdefault(purchase.user_id, array("i")).append(purchase.book_id)
        book = self._books.get(purchase.book_id)
        if book is not None:
            self._ranked.pop(book.category, None)

    def recommend(self, *, user_id: int, category: int, max_results: int) -> list[Recommendation]:
        if user_id < 0:
            raise InvalidRequest(f"user_id must be >= 0 (0 is anonymous), got {user_id}")
        wanted = parse_category(category)
        limit = effective_max_results(max_results)
        owned = set(self._books_of_user.get(user_id, ())) if user_id else set()

        picked: list[Recommendation] = []
        seen: set[int] = set(owned)
        for book_id in self._bought_together(owned, wanted):
            picked.append(Recommendation(self._books[book_id], Reason.BOUGHT_TOGETHER))
            seen.add(book_id)
            if len(picked) == limit:
                return picked
        for book_id in self._ranked_in(wanted):
            if book_id in seen:
                continue
            reason = Reason.BEST_SELLER if self._units_sold[book_id] else Reason.CATALOG
            picked.append(Recommendation(self._books[book_id], reason))
            if len(picked) == limit:
                break
        return picked

    def _recommendable(self, book_id: int, category: Category) -> bool:
        book = self._books.get(book_id)
        return book is not None and book.active and book.category == category

    def _bought_together(self, owned: set[int], category: Category) -> list[int]:
        """Books sharing orders with ``owned``, most shared orders first."""
        together: Counter[int] = Counter()
        for book_id in owned:
            for order_id in self._orders_of_book.get(book_id, ())[-RECENT_ORDERS_PER_BOOK:]:
                for other in self._books_of_order[order_id]:
                    if other not in owned and self._recommendable(other, category):
                        together[other] += 1
        return sorted(together, key=lambda b: (-together[b], -self._units_sold[b], b))

    def _ranked_in(self, category: Category) -> list[int]:
        ranked = self._ranked.get(category)
        if ranked is None:
            ranked = sorted(
                (b.id for b in self._books.values() if b.active and b.category == category),
                key=lambda b: (-self._units_sold[b], b),
            )
            self._ranked[category] = ranked
        return ranked
