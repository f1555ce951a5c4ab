"""The ranking rules, on the index alone (no I/O)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from recommender import engine
from recommender.engine import (
    DEFAULT_MAX_RESULTS,
    MAX_RESULTS_CAP,
    Book,
    Category,
    InvalidRequest,
    Purchase,
    Reason,
    RecommendationIndex,
    parse_category,
)
from tests.recommender.conftest import BOOKS, PURCHASES, SF


def ids(recommendations):
    return [r.book.id for r in recommendations]


def test_anonymous_users_get_best_sellers_then_the_rest_of_the_category(index):
    got = index.recommend(user_id=0, category=SF, max_results=10)
    # Dune sold 3, Neuromancer 2, Le Guin none: catalog order after sellers.
    assert ids(got) == [5, 6, 7]
    assert [r.reason for r in got] == [Reason.BEST_SELLER, Reason.BEST_SELLER, Reason.CATALOG]


def test_books_bought_together_come_first(index):
    # User 3 bought only Dune; Neuromancer was bought with Dune twice.
    got = index.recommend(user_id=3, category=SF, max_results=10)
    assert ids(got) == [6, 7]
    assert got[0].reason is Reason.BOUGHT_TOGETHER


def test_a_customer_who_bought_a_is_recommended_b_after_others_bought_a_and_b():
    books = [Book(i, f"Book {i}", "Author", Category.FANTASY) for i in range(1, 6)]
    # Book 5 is the best seller, but 3 was bought together with 1.
    purchases = [Purchase(1, 10, 1), Purchase(1, 10, 3)]
    purchases += [Purchase(o, 20 + o, 5) for o in range(2, 8)]
    purchases += [Purchase(9, 30, 1)]
    index = RecommendationIndex.build(books, purchases)
    assert ids(index.recommend(user_id=30, category=Category.FANTASY, max_results=2)) == [3, 5]


def test_more_shared_orders_rank_higher():
    books = [Book(i, f"Book {i}", "Author", Category.HISTORY) for i in range(1, 5)]
    purchases = [
        Purchase(1, 10, 1),
        Purchase(1, 10, 2),
        Purchase(2, 11, 1),
        Purchase(2, 11, 3),
        Purchase(3, 12, 1),
        Purchase(3, 12, 3),
        Purchase(4, 13, 1),
    ]
    index = RecommendationIndex.build(books, purchases)
    got = index.recommend(user_id=13, category=Category.HISTORY, max_results=10)
    assert ids(got) == [3, 2, 4]
    assert [r.reason for r in got] == [
        Reason.BOUGHT_TOGETHER,
        Reason.BOUGHT_TOGETHER,
        Reason.CATALOG,
    ]


def test_a_book_bought_together_names_the_purchase_it_was_most_often_bought_with():
    books = [Book(i, f"Book {i}", "Author", Category.HISTORY) for i in range(1, 6)]
    purchases = [
        # 4 was bought with 2 in two orders, with 1 in one; 5 only with 1.
        Purchase(1, 10, 1),
        Purchase(1, 10, 4),
        Purchase(2, 11, 2),
        Purchase(2, 11, 4),
        Purchase(3, 12, 2),
        Purchase(3, 12, 4),
        Purchase(4, 13, 1),
        Purchase(4, 13, 5),
        # The customer bought 1 and 2; 3 only ever sold alone.
        Purchase(5, 14, 1),
        Purchase(6, 14, 2),
        Purchase(7, 15, 3),
    ]
    index = RecommendationIndex.build(books, purchases)

    got = index.recommend(user_id=14, category=Category.HISTORY, max_results=10)

    assert [(r.book.id, r.reason, r.bought_with and r.bought_with.title) for r in got] == [
        (4, Reason.BOUGHT_TOGETHER, "Book 2"),
        (5, Reason.BOUGHT_TOGETHER, "Book 1"),
        (3, Reason.BEST_SELLER, None),
    ]


def test_a_purchase_the_catalog_never_described_is_not_named():
    books = [Book(2, "Book 2", "Author", Category.HISTORY)]
    # Book 1 was sold, but no catalog event ever gave its title.
    index = RecommendationIndex.build(books, [Purchase(1, 10, 1), Purchase(1, 10, 2)])
    index.add_purchase(Purchase(2, 11, 1))

    [got] = index.recommend(user_id=11, category=Category.HISTORY, max_results=10)

    assert (got.book.id, got.reason, got.bought_with) == (2, Reason.BOUGHT_TOGETHER, None)


def test_bought_with_names_the_lower_id_of_owned_books_tied_on_orders():
    # Book 5 is loaded first: its place in the index comes before book 1's.
    books = [Book(i, f"Book {i}", "Author", Category.HISTORY) for i in (5, 1, 4)]
    purchases = [
        # 4 was bought once with 5 and once with 1: a tie.
        Purchase(1, 10, 5),
        Purchase(1, 10, 4),
        Purchase(2, 11, 1),
        Purchase(2, 11, 4),
        # The customer owns both 5 and 1.
        Purchase(3, 12, 5),
        Purchase(4, 12, 1),
    ]
    index = RecommendationIndex.build(books, purchases)

    [got] = index.recommend(user_id=12, category=Category.HISTORY, max_results=1)

    assert (got.book.id, got.bought_with and got.bought_with.id) == (4, 1)


def test_never_recommends_a_book_the_user_bought(index):
    for user_id in (1, 2, 3):
        got = ids(index.recommend(user_id=user_id, category=SF, max_results=50))
        bought = {p.book_id for p in PURCHASES if p.user_id == user_id}
        assert not bought & set(got)
    assert ids(index.recommend(user_id=1, category=SF, max_results=50)) == [7]


def test_only_the_requested_category_each_book_once(index):
    got = index.recommend(user_id=0, category=Category.MYSTERY, max_results=50)
    assert ids(got) == [3, 1, 2, 4]
    assert {r.book.category for r in got} == {Category.MYSTERY}


def test_inactive_books_are_not_recommended(index):
    index.upsert_book(Book(5, "Dune", "Frank Herbert", SF, active=False))
    assert ids(index.recommend(user_id=0, category=SF, max_results=10)) == [6, 7]


def test_a_changed_category_moves_the_book(index):
    index.upsert_book(Book(7, "The Left Hand of Darkness", "Ursula K. Le Guin", Category.FANTASY))
    assert 7 not in ids(index.recommend(user_id=0, category=SF, max_results=10))
    assert ids(index.recommend(user_id=0, category=Category.FANTASY, max_results=10)) == [7]


def test_new_purchases_change_the_ranking(index):
    index.add_purchase(Purchase(200, 9, 7, quantity=5))
    assert ids(index.recommend(user_id=0, category=SF, max_results=10)) == [7, 5, 6]


def test_same_state_same_answer_whatever_the_feed_order():
    forward = RecommendationIndex.build(BOOKS, PURCHASES)
    backward = RecommendationIndex.build(reversed(BOOKS), reversed(PURCHASES))
    for user_id in (0, 1, 2, 3, 4, 99):
        for category in Category:
            assert forward.recommend(
                user_id=user_id, category=category, max_results=10
            ) == backward.recommend(user_id=user_id, category=category, max_results=10)


def test_ids_far_apart_or_far_off_rank_as_small_ones_do():
    # Order kept, so ties break alike: books and customers numbered from 1
    # up, and the same with ids anywhere in int64 (in the table or beside it).
    book_id = {b.id: b.id * 10**12 + 3 for b in BOOKS}
    user_id = {1: 10**15, 2: 2, 3: 3 * 10**15, 4: 10**6 + 4}
    small = RecommendationIndex.build(BOOKS, PURCHASES)
    large = RecommendationIndex.build(
        [replace(b, id=book_id[b.id]) for b in BOOKS],
        [replace(p, book_id=book_id[p.book_id], user_id=user_id[p.user_id]) for p in PURCHASES],
    )
    for user in (1, 2, 3, 4):
        for category in Category:
            got = large.recommend(user_id=user_id[user], category=category, max_results=10)
            expected = small.recommend(user_id=user, category=category, max_results=10)
            assert [book_id[b] for b in ids(expected)] == ids(got)
            assert [r.reason for r in expected] == [r.reason for r in got]
    assert large.book(book_id[5]) == replace(BOOKS[4], id=book_id[5])
    assert large.book(5) is None


def test_unknown_users_are_treated_as_new_customers(index):
    assert ids(index.recommend(user_id=12345, category=SF, max_results=10)) == [5, 6, 7]


def test_max_results_zero_means_the_default_and_large_values_are_capped():
    books = [Book(i, f"Book {i}", "Author", Category.ROMANCE) for i in range(1, 80)]
    index = RecommendationIndex.build(books, [])
    assert len(index.recommend(user_id=0, category=Category.ROMANCE, max_results=0)) == (
        DEFAULT_MAX_RESULTS
    )
    assert len(index.recommend(user_id=0, category=Category.ROMANCE, max_results=3)) == 3
    assert len(index.recommend(user_id=0, category=Category.ROMANCE, max_results=10_000)) == (
        MAX_RESULTS_CAP
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_id": 0, "category": 0, "max_results": -1}, "max_results must be >= 0"),
        ({"user_id": 0, "category": 42, "max_results": 5}, "unknown category 42"),
        ({"user_id": -7, "category": 0, "max_results": 5}, "user_id must be >= 0"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(index, kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        index.recommend(**kwargs)


def test_an_empty_category_gives_an_empty_answer(index):
    assert index.recommend(user_id=0, category=Category.BIOGRAPHY, max_results=5) == []


def test_a_book_bought_together_and_then_withdrawn_is_no_longer_recommended(index):
    assert ids(index.recommend(user_id=3, category=SF, max_results=10)) == [6, 7]
    index.upsert_book(Book(6, "Neuromancer", "William Gibson", SF, active=False))
    assert ids(index.recommend(user_id=3, category=SF, max_results=10)) == [7]
    index.upsert_book(Book(6, "Neuromancer", "William Gibson", SF))
    assert ids(index.recommend(user_id=3, category=SF, max_results=10)) == [6, 7]


def test_an_index_changed_by_events_answers_as_one_built_from_the_same_history():
    """Co-purchases are computed ahead and dropped piecemeal on change; whatever
    the changes, the answers are those of an index built from scratch."""
    rng = random.Random(7)
    books = {i: Book(i, f"Book {i}", "Author", Category(i % 3)) for i in range(1, 41)}
    purchases = [Purchase(o, o % 9 + 1, rng.randint(1, 40)) for o in range(1, 120)]
    changed = RecommendationIndex.build(books.values(), purchases)
    for step in range(300):
        if step % 3:
            purchase = Purchase(rng.randint(1, 160), rng.randint(1, 12), rng.randint(1, 45))
            purchases.append(purchase)
            changed.add_purchase(purchase)
        else:
            # Withdrawn, back on sale, moved to another category, or new.
            book_id = rng.randint(1, 45)
            book = Book(book_id, f"Book {book_id}", "Author", Category(rng.randrange(3)))
            books[book_id] = replace(book, active=rng.random() < 0.7)
            changed.upsert_book(books[book_id])
        if step % 25 == 0:
            fresh = RecommendationIndex.build(books.values(), purchases)
            for user_id in range(13):
                for category in range(3):
                    assert changed.recommend(
                        user_id=user_id, category=category, max_results=8
                    ) == fresh.recommend(user_id=user_id, category=category, max_results=8)


def test_a_history_loaded_in_parts_answers_as_one_loaded_at_once():
    rng = random.Random(11)
    books = [Book(i, f"Book {i}", "Author", Category(i % 2)) for i in range(1, 31)]
    purchases = [
        Purchase(rng.randint(1, 80), rng.randint(1, 15), rng.randint(1, 30)) for _ in range(200)
    ]
    whole = RecommendationIndex.build(books, purchases)
    parts = RecommendationIndex.build(books, purchases[:70])
    for purchase in purchases[70:120]:
        parts.add_purchase(purchase)
    parts.compute_co_purchases()
    parts.add_purchases(purchases[120:])
    assert parts.purchase_count == whole.purchase_count == 200
    for user_id in range(16):
        for category in (0, 1):
            assert parts.recommend(user_id=user_id, category=category, max_results=10) == (
                whole.recommend(user_id=user_id, category=category, max_results=10)
            )


def test_every_category_is_parsed_from_its_number_and_no_other_number_is():
    assert [parse_category(c.value) for c in Category] == list(Category)
    for value in (-1, len(Category), 2**31 - 1):
        with pytest.raises(InvalidRequest, match=f"unknown category {value}"):
            parse_category(value)


def test_sales_arriving_one_by_one_rank_books_as_a_fresh_index_does():
    """A sale moves its book up in place; the order must stay the one a full
    sort gives, for best sellers and for ties among books bought together."""
    rng = random.Random(5)
    books = [Book(i, f"Book {i}", "Author", Category(i % 2)) for i in range(1, 61)]
    purchases = [
        Purchase(rng.randint(1, 40), rng.randint(1, 20), rng.randint(1, 60)) for _ in range(80)
    ]
    changed = RecommendationIndex.build(books, purchases)
    for step in range(400):
        # Many quantities of 1 and a few large ones: books overtake by one and by many.
        purchase = Purchase(
            rng.randint(1, 300), rng.randint(1, 20), rng.randint(1, 60), rng.choice((1, 1, 1, 4))
        )
        purchases.append(purchase)
        changed.add_purchase(purchase)
        if step % 20 == 0:
            fresh = RecommendationIndex.build(books, purchases)
            for user_id in range(21):
                for category in (0, 1):
                    assert changed.recommend(
                        user_id=user_id, category=category, max_results=50
                    ) == fresh.recommend(user_id=user_id, category=category, max_results=50)


def test_a_late_order_takes_its_place_among_a_books_recent_orders(monkeypatch):
    """A book's co-purchases come from its most recent orders, by order id as
    the store lists them on a load. An order arriving late (requeued, replayed
    from the dead letters) must not count as the most recent until a restart."""
    monkeypatch.setattr(engine, "RECENT_ORDERS_PER_BOOK", 2)
    books = [Book(i, f"Book {i}", "Author", Category.MYSTERY) for i in (1, 2, 3)]
    purchases = [
        Purchase(10, 1, 1), Purchase(10, 1, 3),
        Purchase(20, 2, 1),
        Purchase(30, 3, 1),
    ]  # fmt: skip
    live = RecommendationIndex.build(books, purchases)
    late = [Purchase(5, 4, 1), Purchase(5, 4, 2)]  # an old order, arriving now
    for purchase in late:
        live.add_purchase(purchase)

    loaded = RecommendationIndex.build(
        books, sorted(purchases + late, key=lambda p: (p.order_id, p.book_id))
    )
    for user_id in (0, 1, 2, 3, 4):
        assert live.recommend(user_id=user_id, category=0, max_results=10) == loaded.recommend(
            user_id=user_id, category=0, max_results=10
        )
    # Book 1's two most recent orders are 20 and 30: book 2 (order 5) is not
    # bought with it, as far as user 3 (who has book 1) is told.
    assert [r.reason for r in live.recommend(user_id=3, category=0, max_results=10)] == [
        Reason.BEST_SELLER,
        Reason.BEST_SELLER,
    ]
