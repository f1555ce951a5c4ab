"""The SQLite store: what goes in comes back, replays count once, bad files are refused."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone

import pytest

from recommender.engine import Book, Category, Purchase, RecommendationIndex
from recommender.store import SCHEMA_VERSION, AppliedEvent, Store, StoreError
from tests.recommender.conftest import BOOKS, PURCHASES
from tests.recommender.inbox import is_applied


def test_books_and_purchases_survive_a_reopen(tmp_path):
    path = tmp_path / "store.sqlite3"
    with Store(path) as store:
        assert store.is_empty()
        store.upsert_books(BOOKS)
        assert store.add_purchases(PURCHASES) == PURCHASES
    with Store(path) as store:
        assert not store.is_empty()
        assert sorted(store.books(), key=lambda b: b.id) == BOOKS
        assert list(store.purchases()) == sorted(PURCHASES, key=lambda p: (p.order_id, p.book_id))


def test_a_replayed_purchase_is_recorded_once(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        store.upsert_books(BOOKS)
        store.add_purchases(PURCHASES)
        again = store.add_purchases([PURCHASES[0], Purchase(500, 1, 7)])
        assert again == [Purchase(500, 1, 7)]
        assert len(list(store.purchases())) == len(PURCHASES) + 1


def test_upserting_a_book_changes_it(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        store.upsert_books(BOOKS)
        store.upsert_books([Book(5, "Dune Messiah", "Frank Herbert", Category.FANTASY, False)])
        books = {b.id: b for b in store.books()}
        assert books[5] == Book(5, "Dune Messiah", "Frank Herbert", Category.FANTASY, False)
        assert len(books) == len(BOOKS)


def test_the_index_built_from_the_store_answers_like_the_original(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        store.upsert_books(BOOKS)
        store.add_purchases(PURCHASES)
        loaded = RecommendationIndex.build(store.books(), store.purchases())
    original = RecommendationIndex.build(BOOKS, PURCHASES)
    for user_id in (0, 1, 3):
        for category in Category:
            assert loaded.recommend(user_id=user_id, category=category, max_results=10) == (
                original.recommend(user_id=user_id, category=category, max_results=10)
            )


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        Store(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite3"):
        Store(path)


V1_SCHEMA = """
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL,
                    category INTEGER NOT NULL, active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE purchases (order_id INTEGER NOT NULL, book_id INTEGER NOT NULL,
                        user_id INTEGER NOT NULL, quantity INTEGER NOT NULL CHECK (quantity > 0),
                        PRIMARY KEY (order_id, book_id)) WITHOUT ROWID;
INSERT INTO books VALUES (5, 'Dune', 'Frank Herbert', 1, 1);
INSERT INTO purchases VALUES (100, 5, 1, 2);
PRAGMA user_version = 1;
"""


def test_a_version_1_store_is_migrated_in_place_keeping_its_data(tmp_path):
    path = tmp_path / "v1.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(V1_SCHEMA)
    with Store(path) as store:
        assert list(store.books()) == [Book(5, "Dune", "Frank Herbert", Category.SCIENCE_FICTION)]
        assert list(store.purchases()) == [Purchase(100, 1, 5, quantity=2)]
        assert store.apply_event(event_id="e-1", event_type="t").new
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("SELECT event_id, event_type FROM inbox").fetchall() == [("e-1", "t")]


def test_a_store_that_caught_up_on_a_history_remembers_it_after_a_restart(tmp_path):
    path = tmp_path / "v1.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(V1_SCHEMA)
    with Store(path) as store:
        # A store of an earlier version has read no history.
        assert not store.has_caught_up("shop.history")
        store.record_caught_up("shop.history")
        store.record_caught_up("shop.history")
    with Store(path) as store:
        assert store.has_caught_up("shop.history")
        assert not store.has_caught_up("staging.history")


def test_an_event_is_applied_once_with_its_inbox_row(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        first = store.apply_event(
            event_id="e-1",
            event_type="orders.purchase_completed",
            books=[BOOKS[0]],
            purchases=PURCHASES[:2],
        )
        replay = store.apply_event(
            event_id="e-1",
            event_type="orders.purchase_completed",
            books=[Book(1, "Changed", "Someone", Category.ROMANCE)],
            purchases=[Purchase(999, 1, 1)],
        )
        assert first == AppliedEvent(new=True, purchases=tuple(PURCHASES[:2]), books=(BOOKS[0],))
        assert replay == AppliedEvent(new=False)
        assert list(store.books()) == [BOOKS[0]]
        assert list(store.purchases()) == PURCHASES[:2]
        assert is_applied(store, "e-1")
        assert not is_applied(store, "e-2")


def test_a_failing_event_leaves_neither_effects_nor_inbox_row(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        # Fails on the last row, after the inbox row, a book and a purchase.
        with pytest.raises(OverflowError):
            store.apply_event(
                event_id="e-1",
                event_type="orders.purchase_completed",
                books=[BOOKS[0]],
                purchases=[Purchase(100, 1, 5), Purchase(100, 1, 6, quantity=2**70)],
            )
        assert not is_applied(store, "e-1")
        assert store.is_empty()
        assert list(store.purchases()) == []
        # So a later delivery of it can still be applied.
        assert store.apply_event(event_id="e-1", event_type="t", purchases=[PURCHASES[0]]).new


def test_a_book_change_older_than_the_stored_one_is_left_out(tmp_path):
    """A BookUpserted replayed from the dead letters, or requeued behind a newer
    one, must not undo the newer change."""
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    renamed = Book(1, "The Hound (annotated)", "Arthur Conan Doyle", BOOKS[0].category)
    with Store(tmp_path / "s.sqlite3") as store:
        store.upsert_books(BOOKS)  # imported: no time
        newer = store.apply_event(
            event_id="e-new", event_type="t", books=[renamed], occurred_at=noon
        )
        older = store.apply_event(
            event_id="e-old",
            event_type="t",
            books=[BOOKS[0]],
            occurred_at=noon - timedelta(hours=1),
        )
        assert newer.books == (renamed,)
        assert older == AppliedEvent(new=True, books=())  # recorded, changed nothing
        assert is_applied(store, "e-old")
        assert next(b for b in store.books() if b.id == 1) == renamed

        # The same moment or later wins; so does an import, whose time is unknown.
        later = Book(1, "The Hound", "Arthur Conan Doyle", BOOKS[0].category, active=False)
        assert store.apply_event(
            event_id="e-2", event_type="t", books=[later], occurred_at=noon
        ).books
        store.upsert_books([BOOKS[0]])
        assert next(b for b in store.books() if b.id == 1) == BOOKS[0]

        # Times are compared as instants: 13:00 at UTC+2 is before noon UTC.
        store.apply_event(event_id="e-3", event_type="t", books=[renamed], occurred_at=noon)
        earlier_elsewhere = datetime(2026, 11, 25, 13, 0, tzinfo=timezone(timedelta(hours=2)))
        stale = store.apply_event(
            event_id="e-4", event_type="t", books=[BOOKS[0]], occurred_at=earlier_elsewhere
        )
        assert stale.books == ()
        assert next(b for b in store.books() if b.id == 1) == renamed
