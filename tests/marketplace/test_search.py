"""Searching the catalog: title and author, in any case, with or without
accents, within a category, sorted, page by page."""

from __future__ import annotations

import pytest

from marketplace_site.catalog.models import Book
from marketplace_site.catalog.selectors import PAGE_SIZE
from marketplace_site.catalog.services import book_save
from marketplace_site.orders.services import order_checkout
from tests.marketplace.test_views import catalog_ids, page

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf(make_book):
    return {
        "solitude": make_book(
            "14.00",
            title="Cien años de soledad",
            author="Gabriel García Márquez",
            category="romance",
        ),
        "cholera": make_book(
            "12.00",
            title="El amor en los tiempos del cólera",
            author="Gabriel García Márquez",
            category="romance",
        ),
        "dune": make_book("9.00", title="Dune", author="Frank Herbert", category="science-fiction"),
        "strasse": make_book("11.00", title="Die Straße", author="Ann Petry", category="history"),
    }


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("dune", ["dune"]),
        ("HERBERT", ["dune"]),
        ("garcia marquez", ["solitude", "cholera"]),  # no accents typed
        ("García", ["solitude", "cholera"]),
        ("ANOS soledad", ["solitude"]),  # every word, anywhere in title or author
        ("colera", ["cholera"]),
        ("strasse", ["strasse"]),  # ß folds to ss
        ("  dune   ", ["dune"]),
        ("dune garcia", []),
    ],
)
def test_a_search_finds_title_and_author_words_in_any_case_and_accent(client, shelf, query, found):
    response = client.get("/", {"q": query})

    assert response.status_code == 200
    assert catalog_ids(response) == sorted(
        (shelf[name].pk for name in found), key=lambda pk: Book.objects.get(pk=pk).title
    )


def test_a_search_says_what_it_found_and_what_to_do_when_nothing(client, shelf):
    html = page(client.get("/", {"q": "márquez"}))
    assert html.find("h1")[0].clean_text == "Results for “márquez”"
    assert html.text("result-count") == "2 books found."

    html = page(client.get("/", {"q": "márquez", "category": "science-fiction"}))
    assert html.text("no-results") == (
        "No book matches “márquez” in Science Fiction. Check the spelling, try fewer words, "
        "or look in every category."
    )
    [every] = [e for e in html.find("a") if e.clean_text == "look in every category"]
    assert every.attrs["href"] == "/?q=m%C3%A1rquez"


def test_a_search_keeps_to_its_category_and_the_categories_keep_the_search(client, shelf):
    response = client.get("/", {"q": "gabriel", "category": "romance"})
    assert set(catalog_ids(response)) == {shelf["solitude"].pk, shelf["cholera"].pk}

    categories = {
        e.clean_text: e.attrs["href"]
        for e in page(response).find("a")
        if any(a.attrs.get("class") == "categories" for a in e.ancestors)
    }
    assert categories["All"] == "/?q=gabriel"
    assert categories["History"] == "?q=gabriel&category=history"


def test_search_results_page_with_the_search_kept(client, make_book):
    books = [make_book(title=f"Wanted {i:02}") for i in range(PAGE_SIZE + 2)]
    make_book(title="Unwanted")  # "wanted" is in it too: every word, anywhere

    first = client.get("/", {"q": "wanted", "sort": "title"})

    assert len(catalog_ids(first)) == PAGE_SIZE
    [next_link] = page(first).find("a", rel="next")
    assert next_link.attrs["href"] == "?q=wanted&sort=title&page=2"
    second = client.get("/" + next_link.attrs["href"])
    assert len(catalog_ids(second)) == 3
    assert books[-1].pk in catalog_ids(second)


def test_books_sort_by_title_price_or_best_selling(client, customer, make_book):
    cheap, dear, popular = (
        make_book("5.00", title="C", stock=9),
        make_book("30.00", title="A"),
        make_book("12.00", title="B", stock=9),
    )
    order_checkout(user=customer, items={popular.pk: 3, cheap.pk: 1})

    def ids(sort: str) -> list[int]:
        return catalog_ids(client.get("/", {"sort": sort}))

    assert ids("title") == [dear.pk, popular.pk, cheap.pk]
    assert ids("price") == [cheap.pk, popular.pk, dear.pk]
    assert ids("-price") == [dear.pk, popular.pk, cheap.pk]
    assert ids("best-selling") == [popular.pk, cheap.pk, dear.pk]
    [chosen] = page(client.get("/", {"sort": "-price"})).find("option", selected="")
    assert chosen.attrs["value"] == "-price"


@pytest.mark.parametrize("query", ["?sort=cheapest", "?q=" + "x" * 201, "?q=du%00ne"])
def test_an_unknown_sort_or_a_search_no_person_types_is_not_found(client, make_book, query):
    make_book(title="Dune")
    assert client.get("/" + query).status_code == 404


def test_a_book_renamed_is_found_by_its_new_title(client, make_book):
    book = make_book(title="Working Title", author="Someone")
    book.title, book.author = "Die Verwandlung", "Franz Kafka"
    book_save(book=book, fields=["title", "author"])

    assert catalog_ids(client.get("/", {"q": "verwandlung kafka"})) == [book.pk]
    assert catalog_ids(client.get("/", {"q": "working"})) == []
