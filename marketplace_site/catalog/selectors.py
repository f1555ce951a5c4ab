"""Reads of the catalog."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypedDict

from django.core.paginator import Page, Paginator
from django.db.models import F, QuerySet, Sum, Value, Window
from django.db.models.functions import Coalesce, RowNumber

from marketplace_site.catalog.models import Book, Category
from marketplace_site.catalog.search import search_words

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

PAGE_SIZE = 12


class UnitsSold(TypedDict):
    units: int


def category_list() -> QuerySet[Category]:
    return Category.objects.all()


def category_get(*, slug: str) -> Category | None:
    return Category.objects.filter(slug=slug).first()


# How a page of books may be sorted: the orderings, ties broken by title then id.
SORTS = {
    "title": ("title", "id"),
    "price": ("price", "title", "id"),
    "-price": ("-price", "title", "id"),
    "best-selling": ("-units", "title", "id"),
}


def book_page(
    *, category: Category | None, page: int, query: str = "", sort: str = "title"
) -> Page[Book]:
    """One page of books on sale: of a category, matching every word of
    ``query`` in their title or author (in any case, accents or not), sorted
    by ``sort`` (a key of SORTS). Raises django's InvalidPage past the end."""
    books = Book.objects.filter(active=True).select_related("category")
    if category is not None:
        books = books.filter(category=category)
    for word in search_words(query):
        books = books.filter(search_key__contains=word)
    if sort == "best-selling":
        books = _with_units_sold(books)
    return Paginator(books.order_by(*SORTS[sort]), PAGE_SIZE).page(page)


def book_get(*, book_id: int) -> Book | None:
    return Book.objects.select_related("category").filter(pk=book_id, active=True).first()


def books_in_order(book_ids: Sequence[int]) -> list[Book]:
    """The active books among ``book_ids``, in the order given."""
    found = Book.objects.select_related("category").filter(active=True).in_bulk(book_ids)
    return [found[i] for i in book_ids if i in found]


def best_sellers(
    *, category_code: int | None, exclude: Iterable[int] = (), limit: int
) -> list[WithAnnotations[Book, UnitsSold]]:
    """Books on sale by units sold (then title), from the shop's own orders."""
    books = Book.objects.select_related("category").filter(active=True).exclude(pk__in=exclude)
    if category_code is not None:
        books = books.filter(category__code=category_code)
    return list(_with_units_sold(books).order_by(*SORTS["best-selling"])[:limit])


def best_sellers_by_category(*, limit: int) -> list[WithAnnotations[Book, UnitsSold]]:
    """A row that shows every category: the best seller of each (by units
    sold, then title), then the second of each, and so on; within a round the
    better sellers first."""
    books = _with_units_sold(Book.objects.select_related("category").filter(active=True))
    ranked = books.annotate(
        place=Window(
            RowNumber(),
            partition_by=[F("category_id")],
            order_by=[F("units").desc(), F("title").asc(), F("id").asc()],
        )
    )
    return list(
        ranked.filter(place__lte=limit).order_by("place", "-units", "category__name", "id")[:limit]
    )


def _with_units_sold(books: QuerySet[Book]) -> QuerySet[WithAnnotations[Book, UnitsSold]]:
    """Each book with ``units``: the copies the shop's orders bought."""
    return books.annotate(units=Coalesce(Sum("order_lines__quantity"), Value(0)))


def books_low_in_stock(*, threshold: int, limit: int) -> tuple[int, list[Book]]:
    """(how many, the ``limit`` lowest) books on sale with ``threshold`` copies or fewer."""
    books = Book.objects.filter(active=True, stock__lte=threshold)
    return books.count(), list(books.order_by("stock", "title", "id")[:limit])
