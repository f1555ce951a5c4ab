"""The recommender's own store: a SQLite file of books and purchases.

Nothing else reads or writes it (each service owns its data); the serving
path reads the in-memory index built from it, never the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

from recommender.engine import Book, Category, Purchase

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS books (
    id       INTEGER PRIMARY KEY,
    title    TEXT    NOT NULL,
    author   TEXT    NOT NULL,
    category INTEGER NOT NULL,
    active   INTEGER NOT NULL DEFAULT 1
);
-- One row per order line: (order, book) is unique, so replaying an order
-- cannot count it twice.
CREATE TABLE IF NOT EXISTS purchases (
    order_id INTEGER NOT NULL,
    book_id  INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, book_id)
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, not a database, ...)."""


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this build knows {SCHEMA_VERSION}"
            )
        # WAL lets the (later) event consumer write while a loader reads.
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def is_empty(self) -> bool:
        return self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM books)").fetchone()[0] == 1

    def upsert_books(self, books: Iterable[Book]) -> int:
        with self._db:
            cursor = self._db.executemany(
                """
                INSERT INTO books (id, title, author, category, active)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    title = excluded.title, author = excluded.author,
                    category = excluded.category, active = excluded.active
                """,
                ((b.id, b.title, b.author, int(b.category), int(b.active)) for b in books),
            )
            return cursor.rowcount

    def add_purchases(self, purchases: Iterable[Purchase]) -> list[Purchase]:
        """Record purchases; returns those that were new (replays are ignored)."""
        added = []
        with self._db:
            for p in purchases:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO purchases (order_id, book_id, user_id, quantity)"
                    " VALUES (?, ?, ?, ?)",
                    (p.order_id, p.book_id, p.user_id, p.quantity),
                )
                if cursor.rowcount:
                    added.append(p)
        return added

    def books(self) -> Iterator[Book]:
        rows = self._db.execute("SELECT id, title, author, category, active FROM books")
        with closing(rows):
            for id_, title, author, category, active in rows:
                yield Book(id_, title, author, Category(category), bool(active))

    def purchases(self) -> Iterator[Purchase]:
        """In (order, book) order, so the index is the same on every load."""
        with closing(
            self._db.execute("SELECT order_id, user_id, book_id, quantity FROM purchases")
        ) as cursor:
            while rows := cursor.fetchmany(10_000):
                for row in rows:
                    yield Purchase(*row)
