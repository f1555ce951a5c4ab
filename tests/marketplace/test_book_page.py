"""A book's page as a customer reads it: its description, year, a cover drawn
from its title and category, and the way back to its category."""

from __future__ import annotations

import pytest

from marketplace_site.catalog.covers import LINE_WIDTH, MAX_LINES, PALETTES, book_cover
from tests.marketplace.test_views import page

pytestmark = pytest.mark.django_db


def test_the_page_shows_the_description_in_paragraphs_and_the_year(client, make_book):
    book = make_book(
        title="The Murder of Roger Ackroyd",
        year=1926,
        description="A village, a death, a narrator.\n\nPoirot retires to grow marrows.",
    )

    html = page(client.get(f"/books/{book.pk}/"))

    paragraphs = [p.clean_text for p in html.find("p") if p.within("description")]
    assert paragraphs == ["A village, a death, a narrator.", "Poirot retires to grow marrows."]
    assert html.text("year") == "Published 1926"


def test_without_a_description_or_year_the_page_shows_neither(client, make_book):
    book = make_book()

    html = page(client.get(f"/books/{book.pk}/"))

    assert not html.has_id("description")
    assert not html.has_id("year")


def test_a_breadcrumb_leads_back_to_the_books_category(client, make_book):
    book = make_book(title="Emma", category="romance")

    html = page(client.get(f"/books/{book.pk}/"))

    crumbs = [e for e in html.find("li") if e.within("breadcrumb")]
    assert [c.clean_text for c in crumbs] == ["All books", "Romance", "Emma"]
    links = [a.attrs["href"] for a in html.find("a") if a.within("breadcrumb")]
    assert links == ["/", "/?category=romance"]
    assert crumbs[-1].attrs["aria-current"] == "page"


def test_the_cover_is_drawn_in_the_page_from_the_title_and_category(client, make_book):
    book = make_book(title="Dune <Messiah> & Children", category="science-fiction")

    response = client.get(f"/books/{book.pk}/")
    html = page(response)

    [svg] = [e for e in html.find("svg") if e.within("cover")]
    assert svg.attrs["role"] == "img"
    assert svg.attrs["aria-label"] == "Cover of Dune <Messiah> & Children"
    lines = [e.clean_text for e in html.find("tspan") if e.within("cover")]
    assert " ".join(lines) == "Dune <Messiah> & Children"
    background, _ = PALETTES[1]
    assert html.find("rect", fill=background)
    # Drawn, not fetched: no image, and the title's markup stays text.
    assert not html.find("img")
    assert "<Messiah>" not in response.content.decode()


def test_a_long_title_is_set_in_lines_that_fit_and_an_ellipsis(make_book):
    book = make_book(title="A Very Long Title " * 10, author="Someone With A Very Long Name Indeed")

    cover = book_cover(book)

    assert len(cover.lines) == MAX_LINES
    assert all(len(line) <= LINE_WIDTH for line in cover.lines)
    assert cover.lines[-1].endswith("…")
    assert cover.author.endswith("…")
