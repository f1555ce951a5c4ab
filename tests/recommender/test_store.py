"""The SQLite store: what goes in comes back, replays count once, bad files are refused."""

from __future__ import annotations

import sqlite3

import pytest

from recommender.engine import Book, Category, Purchase, RecommendationIndex
from recommender.store import Store, StoreError
from tests.recommender.conftest import BOOKS, PURCHASES


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
