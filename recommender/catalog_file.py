"""Reading a catalog CSV (the bundled demo catalog or one given on the command line).

Columns: id,title,author,category[,...]; category is a BookCategory name
(MYSTERY, SCIENCE_FICTION, ...). Extra columns (price, stock, ...) belong to
the marketplace and are ignored here.
"""

from __future__ import annotations

import csv
from pathlib import Path

from recommender.engine import Book, Category

REQUIRED_COLUMNS = ("id", "title", "author", "category")


class CatalogFileError(ValueError):
    """The file cannot be imported; the message names the file and the line."""


def read_catalog(path: Path) -> list[Book]:
    """Every book in the file, or an error naming the first bad line (nothing half-read)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise CatalogFileError(f"{path}: missing column(s): {', '.join(missing)}")
            books: dict[int, Book] = {}
            for row in reader:
                book = _parse_row(row, where=f"{path}:{reader.line_num}")
                if book.id in books:
                    raise CatalogFileError(f"{path}:{reader.line_num}: duplicate id {book.id}")
                books[book.id] = book
    except OSError as exc:
        raise CatalogFileError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    if not books:
        raise CatalogFileError(f"{path}: no books")
    return list(books.values())


def _parse_row(row: dict[str, str | None], *, where: str) -> Book:
    raw_id = (row.get("id") or "").strip()
    try:
        book_id = int(raw_id)
    except ValueError:
        raise CatalogFileError(f"{where}: id must be a whole number, got {raw_id!r}") from None
    if not 0 < book_id < 2**31:
        raise CatalogFileError(f"{where}: id must be between 1 and 2^31-1, got {book_id}")
    title = (row.get("title") or "").strip()
    author = (row.get("author") or "").strip()
    if not title or not author:
        raise CatalogFileError(f"{where}: title and author must not be empty")
    category_name = (row.get("category") or "").strip().upper()
    try:
        category = Category[category_name]
    except KeyError:
        known = ", ".join(c.name for c in Category)
        raise CatalogFileError(
            f"{where}: unknown category {category_name!r}; known: {known}"
        ) from None
    return Book(book_id, title, author, category)
