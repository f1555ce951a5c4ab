"""The recommender's own store: a SQLite file of books, purchases and applied events.

Nothing else reads or writes it (each service owns its data); the serving
path reads the in-memory index built from it, never the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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
    """
    -- When the book's last applied change happened (the event's occurred_at,
    -- UTC ISO 8601): an older change, replayed or redelivered late, is ignored.
    -- NULL for books imported from a file, whose time is unknown.
    ALTER TABLE books ADD COLUMN changed_at TEXT;
    """,
    """
    -- The event histories (streams) this store has read up to the moment its
    -- queue existed: everything since is in the queue, so never again.
    CREATE TABLE IF NOT EXISTS caught_up (
        stream        TEXT PRIMARY KEY,
        caught_up_at  TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class EventChange:
    """One event's changes, for ``Store.apply_events``."""

    event_id: str
    event_type: str
    books: tuple[Book, ...] = ()
    purchases: tuple[Purchase, ...] = ()
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """What ``Store.apply_event`` did."""

    # False for an event already in the inbox: nothing was applied.
    new: bool
    # The purchases recorded; fewer than given when an order line was
    # already known (the same order arriving under another event id).
    purchases: tuple[Purchase, ...] = ()
    # The books written; fewer than given when the store holds a newer change.
    books: tuple[Book, ...] = ()


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
        empty: int = self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM books)").fetchone()[0]
        return empty == 1

    def upsert_books(self, books: Iterable[Book]) -> int:
        """Add or overwrite ``books`` (an import: its time is unknown, it always wins)."""
        with self._db:
            return len(self._upsert_books(books, changed_at=None))

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
        occurred_at: datetime | None = None,
    ) -> AppliedEvent:
        """Record ``event_id`` in the inbox and apply its effects, in one transaction.

        An event already in the inbox changes nothing. A book change older
        than the one stored (``occurred_at``) is left out. If anything fails,
        nothing is recorded, so the event can be applied again.
        """
        change = EventChange(event_id, event_type, tuple(books), tuple(purchases), occurred_at)
        (applied,) = self.apply_events([change], applied_at=applied_at)
        return applied

    def apply_events(
        self, changes: Sequence[EventChange], *, applied_at: datetime | None = None
    ) -> list[AppliedEvent]:
        """apply_event() for each, in order, in one transaction: one commit (and
        one fsync) for the lot. If anything fails, none of them is recorded."""
        at = (applied_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
        with self._db:
            return [self._apply(change, at) for change in changes]

    def _apply(self, change: EventChange, applied_at: str) -> AppliedEvent:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO inbox (event_id, event_type, applied_at) VALUES (?, ?, ?)",
            (change.event_id, change.event_type, applied_at),
        )
        if not cursor.rowcount:
            return AppliedEvent(new=False)
        changed_at = None if change.occurred_at is None else _utc_iso(change.occurred_at)
        written = self._upsert_books(change.books, changed_at=changed_at)
        added = self._add_purchases(change.purchases)
        return AppliedEvent(new=True, purchases=tuple(added), books=tuple(written))

    def has_caught_up(self, stream: str) -> bool:
        row = self._db.execute("SELECT 1 FROM caught_up WHERE stream = ?", (stream,)).fetchone()
        return row is not None

    def forget_caught_up(self, stream: str) -> None:
        """The stream is to be read again (this replica's queue was lost)."""
        with self._db:
            self._db.execute("DELETE FROM caught_up WHERE stream = ?", (stream,))

    def record_caught_up(self, stream: str, *, at: datetime | None = None) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO caught_up (stream, caught_up_at) VALUES (?, ?)",
                (stream, (at or datetime.now(UTC)).isoformat(timespec="milliseconds")),
            )

    _UPSERT_BOOK = """
        INSERT INTO books (id, title, author, category, active, changed_at)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
            title = excluded.title, author = excluded.author,
            category = excluded.category, active = excluded.active,
            changed_at = excluded.changed_at
        WHERE excluded.changed_at IS NULL OR books.changed_at IS NULL
            OR excluded.changed_at >= books.changed_at
        """

    def _upsert_books(self, books: Iterable[Book], *, changed_at: str | None) -> list[Book]:
        def row(b: Book) -> tuple[object, ...]:
            return (b.id, b.title, b.author, int(b.category), int(b.active), changed_at)

        books = list(books)
        if changed_at is None:
            # An import always wins: every book is written, in one executemany
            # (100k of them for a synthetic store).
            self._db.executemany(self._UPSERT_BOOK, map(row, books))
            return books
        # An event's few books, one by one: which of them were older than the store's?
        return [b for b in books if self._db.execute(self._UPSERT_BOOK, row(b)).rowcount]

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


def _utc_iso(moment: datetime) -> str:
    """One fixed format, so that text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
