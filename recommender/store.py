"""The recommender's own store: a SQLite file of books, purchases and applied events.

Nothing else reads or writes it (each service owns its data); the serving
path reads the in-memory index built from it, never the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recommender.engine import Book, Category, Purchase

# Step N brings a file from user_version N-1 to N; each runs in one transaction.
MIGRATIONS = (
    """
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
    """,
    """
    -- The events already applied: written in the transaction of their
    -- effects, so a redelivered event finds its row and changes nothing.
    CREATE TABLE IF NOT EXISTS inbox (
        event_id   TEXT PRIMARY KEY,
        event_type TEXT NOT NULL,
        applied_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """What ``Store.apply_event`` did."""

    # False for an event already in the inbox: nothing was applied.
    new: bool
    # The purchases recorded; fewer than given when an order line was
    # already known (the same order arriving under another event id).
    purchases: tuple[Purchase, ...] = ()


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
        # WAL lets the event consumer write while a loader reads.
        self._db.execute("PRAGMA journal_mode=WAL")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # executescript() ignores the module's transaction handling, so the
            # step and its version bump are made atomic explicitly.
            self._db.executescript(
                f"BEGIN; {MIGRATIONS[target - 1]} PRAGMA user_version = {target}; COMMIT;"
            )

    def is_empty(self) -> bool:
        return self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM books)").fetchone()[0] == 1

    def upsert_books(self, books: Iterable[Book]) -> int:
        with self._db:
            return self._upsert_books(books)

    def add_purchases(self, purchases: Iterable[Purchase]) -> list[Purchase]:
        """Record purchases; returns those that were new (replays are ignored)."""
        with self._db:
            return self._add_purchases(purchases)

    def apply_event(
        self,
        *,
        event_id: str,
        event_type: str,
        books: Iterable[Book] = (),
        purchases: Iterable[Purchase] = (),
        applied_at: datetime | None = None,
    ) -> AppliedEvent:
        """Record ``event_id`` in the inbox and apply its effects, in one transaction.

        An event already in the inbox changes nothing. If anything fails,
        nothing is recorded, so the event can be applied again.
        """
        applied_at = applied_at or datetime.now(UTC)
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO inbox (event_id, event_type, applied_at) VALUES (?, ?, ?)",
                (event_id, event_type, applied_at.isoformat(timespec="milliseconds")),
            )
            if not cursor.rowcount:
                return AppliedEvent(new=False)
            self._upsert_books(books)
            added = self._add_purchases(purchases)
        return AppliedEvent(new=True, purchases=tuple(added))

    def is_applied(self, event_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM inbox WHERE event_id = ?", (event_id,)).fetchone()
        return row is not None

    def _upsert_books(self, books: Iterable[Book]) -> int:
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

    def _add_purchases(self, purchases: Iterable[Purchase]) -> list[Purchase]:
        added = []
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
