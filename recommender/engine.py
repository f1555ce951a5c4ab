"""Ranking: which books to recommend to whom. Pure Python, no I/O, no gRPC.

The index holds the catalog and the purchase history in memory, shaped for
answering one question fast: given a user and a category, which books?

1. Books bought in the same orders as the user's own purchases (co-purchase),
   the most often bought together first, each naming the purchase it was
   most often bought with.
2. The category's best sellers, by units sold.
3. The rest of the category, in catalog (id) order.

Never a book the user already bought, never an inactive book, each book
once, ties broken by id so the same state always gives the same answer.
"""

from __future__ import annotations

import enum
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress

from recommender.blocks import NONE, Blocks
from recommender.dense_ids import DenseIds, IdSlots

DEFAULT_MAX_RESULTS = 10
MAX_RESULTS_CAP = 50
# A best seller sits in tens of thousands of orders; its most recent ones say
# as much about what goes with it, and bound the cost of a call.
RECENT_ORDERS_PER_BOOK = 200
BOOKS_MADE_KEPT = 16_384


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
    # For BOUGHT_TOGETHER: the user's purchase it was most often bought with.
    bought_with: Book | None = None


# Category by value (the values run 0..n-1), for the bytes that store it.
_CATEGORY_OF: tuple[Category, ...] = tuple(sorted(Category))
# A book id seen only in purchases so far; a book not to recommend.
_UNKNOWN = 255
_NOT_PICKABLE = 255
# Per category, a bytes.translate() table: 1 for its value, 0 for any other.
_MARKS_OF: tuple[bytes, ...] = tuple(
    bytes(value == category for value in range(256)) for category in _CATEGORY_OF
)


def parse_category(value: int) -> Category:
    if 0 <= value < len(_CATEGORY_OF):
        return _CATEGORY_OF[value]  # a tuple index: Category(value) costs ~1 us a call
    known = ", ".join(f"{c.name}={c.value}" for c in Category)
    raise InvalidRequest(f"unknown category {value}; known: {known}")


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

    At 100k books and 1M purchases everything lives in flat arrays indexed by
    a dense "slot" per book and per order, not in per-item objects: a book's
    Book is made only when it is recommended.
    """

    def __init__(self) -> None:
        # Books, by slot; a slot is made on first sight of a book id, by
        # upsert_book or by a purchase of a book the catalog has not sent yet.
        self._slot_of = IdSlots()
        self._book_ids = array("q")
        self._titles: list[str] = []
        self._authors: list[str] = []
        self._author_pool: dict[str, str] = {}
        self._category = bytearray()
        self._active = bytearray()
        # The category a book may be recommended in, or _NOT_PICKABLE.
        self._pickable = bytearray()
        self._units_sold = array("q")
        self._known = 0
        # Order slot -> its book slots; book slot -> its order slots in feed
        # order; customer slot -> the book slots they bought.
        self._orders = DenseIds()
        self._order_books = Blocks()
        self._orders_of_book = Blocks()
        # Customers arrive in any order: found by id, where a sorted id array
        # would insert.
        self._user_slot = IdSlots()
        self._books_of_user = Blocks()
        self._purchases = 0
        # Category -> its pickable book slots by (-units sold, id), and
        # _rank[slot] a slot's place in it. A sale moves the book up in place;
        # a catalog change has the category's list made again when next needed.
        # Arrays, not lists: a list holds an int object per slot (3.5 MB more
        # at 100k books).
        self._ranked: dict[int, array[int]] = {}
        self._rank = array("i")
        # Book slot -> the pickable books in its recent orders, per category
        # (repeated once per shared order). Computed for every book by build(),
        # so no call pays for a book's first sight; dropped when one of its
        # orders, or the pickability of a book in them, changes, and computed
        # again at the next call that needs it.
        # Each block: len(Category) + 1 offsets from its start, then the others
        # by category. About 8 MB at 100k books and 1M purchases.
        self._co_purchases = Blocks()
        # Book objects already made for answers (the best sellers, mostly).
        self._books_made: dict[int, Book] = {}

    @classmethod
    def build(cls, books: Iterable[Book], purchases: Iterable[Purchase]) -> RecommendationIndex:
        index = cls()
        for book in books:
            index.upsert_book(book)
        index.add_purchases(purchases)
        index.compute_co_purchases()
        for category in Category:
            index._ranked_in(category)
        return index

    def add_purchases(self, purchases: Iterable[Purchase]) -> None:
        """add_purchase() for each, with each list extended once at the end (a
        history of a million purchases loads in seconds). Co-purchases are then
        computed anew, as calls need them or by compute_co_purchases()."""
        orders, books, users = array("i"), array("i"), array("i")
        units_sold, book_slot = self._units_sold, self._slot
        order_slot, user_slot = self._orders.slot, self._user_slot.slot
        for purchase in purchases:
            book = book_slot(purchase.book_id)
            units_sold[book] += purchase.quantity
            books.append(book)
            orders.append(order_slot(purchase.order_id))
            users.append(user_slot(purchase.user_id))
        self._purchases += len(books)
        self._order_books.grow(len(self._orders))
        self._books_of_user.grow(len(self._user_slot))
        # Each list of slots goes as soon as it is laid out, before the next
        # layout takes its room: at a million purchases each is 4 MB of the
        # process's peak (issue 18's memory target).
        self._books_of_user.extend(users, books)
        del users
        self._order_books.extend(orders, books)
        self._orders_of_book.extend(books, orders)
        del orders, books
        # As many orders change as there are purchases, at worst: all anew.
        self._co_purchases.clear()
        self._ranked.clear()

    def compute_co_purchases(self) -> None:
        """Compute every book's co-purchases ahead of the calls (under a second at
        100k books and 1M purchases)."""
        for slot in range(len(self._book_ids)):
            self._co_purchases_at(slot)

    def __len__(self) -> int:
        return self._known

    @property
    def purchase_count(self) -> int:
        return self._purchases

    def book(self, book_id: int) -> Book | None:
        slot = self._slot_of.get(book_id)
        if slot == NONE or self._category[slot] == _UNKNOWN:
            return None
        return self._book_at(slot)

    def _book_at(self, slot: int) -> Book:
        book = self._books_made.get(slot)
        if book is None:
            book = Book(
                self._book_ids[slot],
                self._titles[slot],
                self._authors[slot],
                _CATEGORY_OF[self._category[slot]],
                self._active[slot] == 1,
            )
            if len(self._books_made) < BOOKS_MADE_KEPT:
                self._books_made[slot] = book
        return book

    def _slot(self, book_id: int) -> int:
        slot = self._slot_of.get(book_id)
        if slot == NONE:
            slot = self._slot_of.add(book_id)
            self._book_ids.append(book_id)
            self._titles.append("")
            self._authors.append("")
            self._category.append(_UNKNOWN)
            self._active.append(0)
            self._pickable.append(_NOT_PICKABLE)
            self._units_sold.append(0)
            self._rank.append(0)
            self._orders_of_book.add_key()
            self._co_purchases.add_key()
        return slot

    def upsert_book(self, book: Book) -> None:
        slot = self._slot(book.id)
        if self._category[slot] == _UNKNOWN:
            self._known += 1
        self._books_made.pop(slot, None)
        self._titles[slot] = book.title
        self._authors[slot] = self._author_pool.setdefault(book.author, book.author)
        self._category[slot] = book.category
        self._active[slot] = book.active
        pickable = book.category if book.active else _NOT_PICKABLE
        was = self._pickable[slot]
        if was != pickable:
            self._pickable[slot] = pickable
            self._forget_co_purchases_around(slot)
            # It leaves one category's list and joins another's; a change of
            # title or author (a whole catalog republished) ranks nothing anew.
            self._ranked.pop(was, None)
            self._ranked.pop(pickable, None)

    def add_purchase(self, purchase: Purchase) -> None:
        book = self._slot(purchase.book_id)
        order = self._orders.slot(purchase.order_id)
        self._order_books.grow(len(self._orders))
        user = self._user_slot.slot(purchase.user_id)
        self._books_of_user.grow(len(self._user_slot))
        self._purchases += 1
        self._units_sold[book] += purchase.quantity
        self._forget_co_purchases_in(order)
        self._co_purchases.drop(book)
        self._order_books.append(order, book)
        self._add_order_of_book(book, order, purchase.order_id)
        self._books_of_user.append(user, book)
        self._move_up(book)

    def _add_order_of_book(self, book: int, order: int, order_id: int) -> None:
        """A book's orders are kept by order id, as a load from the store lists
        them, so that its most recent ones are the same live and after a
        restart. An order that arrives late (requeued, replayed from the dead
        letters) goes to its place, not the end."""
        orders = self._orders_of_book
        start, size = orders.starts[book], orders.sizes[book]
        # The newest order of all, as sales come: no id to look up.
        if size == 0 or self._orders.is_greatest(order_id):
            orders.append(book, order)
            return
        id_of = self._orders.id_of
        if id_of(orders.flat[start + size - 1]) < order_id:
            orders.append(book, order)
            return
        place = bisect_left(orders.items(book), order_id, key=id_of)
        orders.insert(book, place, order)

    def _forget_co_purchases_around(self, slot: int) -> None:
        """Drop the co-purchases that may list ``slot``: those of every book
        sharing one of its orders (all of them, as any may be another's recent)."""
        for order in self._orders_of_book.items(slot):
            self._forget_co_purchases_in(order)

    def _forget_co_purchases_in(self, order: int) -> None:
        """Drop the co-purchases of the order's books: each lists the others."""
        co_purchases = self._co_purchases
        for other in self._order_books.items(order):
            co_purchases.drop(other)

    def recommend(self, *, user_id: int, category: int, max_results: int) -> list[Recommendation]:
        if user_id < 0:
            raise InvalidRequest(f"user_id must be >= 0 (0 is anonymous), got {user_id}")
        wanted = parse_category(category)
        limit = effective_max_results(max_results)
        user = self._user_slot.get(user_id) if user_id else NONE
        owned = set(self._books_of_user.items(user)) if user != NONE else set()

        picked: list[Recommendation] = []
        seen: set[int] = set(owned)
        for slot, source in self._bought_together(owned, wanted, limit):
            known = source != NONE and self._category[source] != _UNKNOWN
            bought_with = self._book_at(source) if known else None
            picked.append(Recommendation(self._book_at(slot), Reason.BOUGHT_TOGETHER, bought_with))
            seen.add(slot)
            if len(picked) == limit:
                return picked
        units_sold = self._units_sold
        for slot in self._ranked_in(wanted):
            if slot in seen:
                continue
            reason = Reason.BEST_SELLER if units_sold[slot] else Reason.CATALOG
            picked.append(Recommendation(self._book_at(slot), reason))
            if len(picked) == limit:
                break
        return picked

    def _bought_together(
        self, owned: set[int], category: Category, limit: int
    ) -> list[tuple[int, int]]:
        """The first ``limit`` books sharing orders with ``owned``: most shared
        orders first, then by units sold, then by id; each with the owned book
        it shares the most orders with."""
        if not owned:
            return []
        offset = int(category)  # plain int arithmetic: an IntEnum's is slower
        co_purchases = self._co_purchases
        candidates = array("i")
        # Where each owned book's co-purchases sit in ``candidates``.
        spans: list[tuple[int, int, int]] = []
        for slot in owned:
            at = self._co_purchases_at(slot)
            others = co_purchases.flat
            start = len(candidates)
            candidates += others[at + others[at + offset] : at + others[at + offset + 1]]
            if len(candidates) > start:
                spans.append((slot, start, len(candidates)))
        # Counted in C, in one call.
        together = Counter(candidates)
        for slot in owned:
            together.pop(slot, None)
        if not together:
            return []
        counts = sorted(together.values(), reverse=True)
        threshold = counts[min(limit, len(counts)) - 1]
        picked = [slot for slot, count in together.items() if count >= threshold]
        # Every candidate is pickable in ``category``, so its place in that
        # category's ranking is its (-units sold, id) order.
        self._ranked_in(category)
        picked.sort(key=self._rank.__getitem__)
        picked.sort(key=together.__getitem__, reverse=True)  # stable: ties keep rank order
        picked = picked[:limit]
        if len(spans) == 1:  # one owned book with co-purchases: it is every pick's
            return [(slot, spans[0][0]) for slot in picked]
        return list(zip(picked, self._bought_with(picked, candidates, spans), strict=True))

    def _bought_with(
        self, picked: list[int], candidates: array[int], spans: list[tuple[int, int, int]]
    ) -> list[int]:
        """For each of ``picked``, the owned book whose orders hold it most often
        (ties: the lower id). Each owned book's co-purchases are sliced once, and
        only the picks they hold are counted, in C: slicing them again for every
        pick cost a third of the throughput, and counting all of them half the
        rest."""
        book_ids = self._book_ids
        best = dict.fromkeys(picked, NONE)
        best_count = dict.fromkeys(picked, 0)
        wanted = set(picked)
        for owner, start, end in spans:
            span = candidates[start:end]
            # Most owned books share orders with none of the picks: found in C,
            # as are the counts of the few they do hold.
            for slot in wanted.intersection(span):
                count = span.count(slot)
                if count > best_count[slot] or (
                    count == best_count[slot] and book_ids[owner] < book_ids[best[slot]]
                ):
                    best[slot], best_count[slot] = owner, count
        return [best[slot] for slot in picked]

    def _co_purchases_at(self, slot: int) -> int:
        """Where the book's block starts in ``self._co_purchases.flat``."""
        found = self._co_purchases.starts[slot]
        if found != NONE:
            return found
        by_category: list[list[int]] = [[] for _ in _CATEGORY_OF]
        pickable = self._pickable
        order_books = self._order_books
        books, start, size = order_books.flat, order_books.starts, order_books.sizes
        for order in self._orders_of_book.last(slot, RECENT_ORDERS_PER_BOOK):
            first = start[order]
            for other in books[first : first + size[order]]:
                where = pickable[other]
                if where != _NOT_PICKABLE and other != slot:
                    by_category[where].append(other)
        offsets = [len(by_category) + 1]
        for others in by_category:
            offsets.append(offsets[-1] + len(others))
        block = array("i", offsets)
        for others in by_category:
            block.extend(others)
        return self._co_purchases.put(slot, block)

    def _ranked_in(self, category: Category) -> array[int]:
        ranked = self._ranked.get(category)
        if ranked is None:
            pickable = self._pickable
            # The slots pickable in the category, found in C: translate() marks them.
            marks = pickable.translate(_MARKS_OF[category])
            order = list(compress(range(len(pickable)), marks))
            # Two stable sorts by C key functions: by id, then by units sold.
            order.sort(key=self._book_ids.__getitem__)
            order.sort(key=self._units_sold.__getitem__, reverse=True)
            ranked = array("i", order)
            del order
            rank = self._rank
            for place, slot in enumerate(ranked):
                rank[slot] = place
            self._ranked[category] = ranked
        return ranked

    def _move_up(self, slot: int) -> None:
        """Move a book that has just sold more to its place in its category's
        list: a binary search and one move, where sorting the category again
        took about 14 ms at 100k books, for every purchase."""
        ranked = self._ranked.get(self._pickable[slot])
        if ranked is None:  # not pickable, or the list is to be made anyway
            return
        units_sold, book_ids, rank = self._units_sold, self._book_ids, self._rank
        place = rank[slot]
        to = bisect_left(
            ranked,
            (-units_sold[slot], book_ids[slot]),
            hi=place,
            key=lambda other: (-units_sold[other], book_ids[other]),
        )
        if to == place:
            return
        del ranked[place]
        ranked.insert(to, slot)
        for moved in range(to, place + 1):
            rank[ranked[moved]] = moved
