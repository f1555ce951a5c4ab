"""The catalog's event payloads."""

from __future__ import annotations

from django.conf import settings

from bookstore.events.v1 import events_pb2
from events.contracts import book_category
from marketplace_site.catalog.models import Book


def book_upserted(book: Book) -> events_pb2.BookUpserted:
    return events_pb2.BookUpserted(
        book_id=book.pk,
        title=book.title,
        author=book.author,
        category=book_category(book.category.code),
        price=str(book.price),
        currency=settings.SHOP_CURRENCY,
        stock=book.stock,
        active=book.active,
        year=book.year or 0,
    )
