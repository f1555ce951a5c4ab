"""Writes to the catalog. Every change to a book records a BookUpserted event."""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypedDict

from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Value
from django.db.models.functions import Cast, Greatest, Least

from bookstore.recommendations.v1 import recommendations_pb2
from marketplace_site.catalog.events import book_upserted
from marketplace_site.catalog.models import CATEGORY_CODES, MAX_STOCK, Book, Category
from marketplace_site.catalog.search import book_search_key
from marketplace_site.outbox.services import outbox_record


class CatalogError(ValueError):
    """A catalog change cannot be made; the message says why."""


def book_save(*, book: Book, fields: Collection[str] | None = None, stock_change: int = 0) -> Book:
    """Save a book (new or changed) and record the event in one transaction.

    For a book already saved, ``fields`` names what to write: the rest, the
    stock above all, stays as the database has it, so a form opened before
    some sales cannot put their copies back. ``stock_change`` adds copies
    received (or, negative, takes off copies written off) to the stock as it
    is when saved, never below 0 (nor above MAX_STOCK, which the admin's form
    refuses to pass; only additions racing each other could reach it).
    """
    if abs(stock_change) > MAX_STOCK:
        raise CatalogError(f"a stock change is at most {MAX_STOCK:,} copies, got {stock_change:,}")
    book.search_key = book_search_key(title=book.title, author=book.author)
    with transaction.atomic():
        book.full_clean()
        if fields is None or book._state.adding:
            book.save()
        else:
            book.save(update_fields=[*fields, "search_key", "updated_at"])
        if stock_change:
            # In 64 bits: the sum may pass the column's 32 before it is bounded.
            added = Cast(F("stock"), BigIntegerField()) + Value(stock_change)
            Book.objects.filter(pk=book.pk).update(
                stock=Least(Greatest(added, Value(0)), Value(MAX_STOCK))
            )
        if fields is not None or stock_change:
            book.refresh_from_db(fields=["stock"])
        outbox_record(payload=book_upserted(book))
    return book


def book_publish_all() -> int:
    """Record a BookUpserted for every book, so a fresh consumer learns the catalog."""
    count = 0
    with transaction.atomic():
        for book in Book.objects.select_related("category").order_by("id").iterator():
            outbox_record(payload=book_upserted(book))
            count += 1
    return count


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int
    unchanged: int


def categories_ensure() -> dict[int, Category]:
    """One Category per contract value; staff may rename them, codes stay."""
    categories = {c.code: c for c in Category.objects.all()}
    for code, label in CATEGORY_CODES:
        if code not in categories:
            slug = recommendations_pb2.BookCategory.Name(code).lower().replace("_", "-")
            categories[code] = Category.objects.create(code=code, name=label, slug=slug)
    return categories


def catalog_load(*, path: Path) -> LoadResult:
    """Load a catalog CSV (id,title,author,category,year,price,stock, and
    optionally description).

    Idempotent: books already as in the file are left alone (no event);
    new and changed ones are saved with their events. A bad line refuses the
    whole file.
    """
    rows = _read_rows(path)
    created = updated = unchanged = 0
    with transaction.atomic():
        categories = categories_ensure()
        existing = Book.objects.select_related("category").in_bulk([r["id"] for r in rows])
        for row in rows:
            fields = {
                "title": row["title"],
                "author": row["author"],
                "category": categories[row["category"]],
                "year": row["year"],
                "price": row["price"],
            }
            # Only from a file that has the column: a file without one keeps
            # what staff wrote in the admin.
            if row["description"] is not None:
                fields["description"] = row["description"]
            book = existing.get(row["id"])
            if book is None:
                book_save(book=Book(id=row["id"], stock=row["stock"], **fields))
                created += 1
            elif any(getattr(book, name) != value for name, value in fields.items()):
                # Stock is the shop's own once loaded: a reload must not undo sales.
                for name, value in fields.items():
                    setattr(book, name, value)
                book_save(book=book, fields=fields)
                updated += 1
            else:
                unchanged += 1
        if created:
            _reset_id_sequence()
    return LoadResult(created, updated, unchanged)


def _reset_id_sequence() -> None:
    # Explicit ids do not advance PostgreSQL's sequence; without this the
    # next book added in the admin would collide with a loaded one.
    for sql in connection.ops.sequence_reset_sql(no_style(), [Book]):
        with connection.cursor() as cursor:
            cursor.execute(sql)


class _BookRow(TypedDict):
    id: int
    title: str
    author: str
    category: int
    year: int | None
    price: Decimal
    stock: int
    description: str | None


def _read_rows(path: Path) -> list[_BookRow]:
    names = dict(recommendations_pb2.BookCategory.items())
    rows: list[_BookRow] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                where = f"{path}:{reader.line_num}"
                try:
                    category = names[(row.get("category") or "").strip().upper()]
                    parsed: _BookRow = {
                        "id": int(row["id"]),
                        "title": row["title"].strip(),
                        "author": row["author"].strip(),
                        "category": category,
                        "year": int(row["year"]) if row.get("year") else None,
                        "price": Decimal(row["price"]),
                        "stock": int(row.get("stock") or 0),
                        "description": _stripped(row.get("description")),
                    }
                except (KeyError, ValueError, TypeError, AttributeError, InvalidOperation):
                    raise CatalogError(
                        f"{where}: expected id,title,author,category,year,price,stock "
                        f"with a known category, got {row}"
                    ) from None
                if not parsed["title"] or not parsed["author"] or parsed["price"] <= 0:
                    raise CatalogError(f"{where}: title, author and a positive price are required")
                rows.append(parsed)
    except OSError as exc:
        raise CatalogError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text") from exc
    return rows


def _stripped(value: str | None) -> str | None:
    return None if value is None else value.strip()
