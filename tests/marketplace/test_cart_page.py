"""The cart page as a customer reads it: every amount on a phone, stock
warnings before "Place order", never a stale copy from the browser's cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from marketplace_site.catalog.models import Book
from tests.marketplace.test_views import Element, Page, add, checkout, page

pytestmark = pytest.mark.django_db

STYLESHEET = Path(__file__).resolve().parents[2] / "marketplace_site/static/css/site.css"


def hidden_on_phones() -> list[str]:
    """The selectors the stylesheet hides at a phone's width (390 px)."""
    css = re.sub(r"/\*.*?\*/", "", STYLESHEET.read_text(), flags=re.S)
    hidden = []
    for media, body in re.findall(r"@media\s*([^{]*)\{((?:[^{}]*\{[^{}]*\})*)\s*\}", css):
        widest = re.search(r"max-width:\s*(\d+)px", media)
        if widest is None or int(widest.group(1)) < 390:
            continue
        for selectors, rules in re.findall(r"([^{}]+)\{([^{}]*)\}", body):
            if re.search(r"display:\s*none", rules):
                hidden += [s.strip() for s in selectors.split(",")]
    return hidden


def matches(html: Page, element: Element, selector: str) -> bool:
    """Whether ``element`` matches a selector of tags, classes and :nth-child
    joined by spaces: what the stylesheet's hiding rules are written in."""
    *ancestors, last = selector.split()
    if not _compound(html, element, last):
        return False
    chain = list(element.ancestors)
    for part in reversed(ancestors):
        while chain and not _compound(html, chain[-1], part):
            chain.pop()
        if not chain:
            return False
        chain.pop()
    return True


def _compound(html: Page, element: Element, compound: str) -> bool:
    parsed = re.fullmatch(r"([a-z0-9]*)((?:\.[\w-]+)*)(?::nth-child\((\d+)\))?", compound)
    assert parsed, f"the test reads no selector like {compound!r}"
    tag, classes, nth = parsed.groups()
    if tag and element.tag != tag:
        return False
    if not set(classes.split(".")[1:]) <= set(element.attrs.get("class", "").split()):
        return False
    if nth:
        parent = element.ancestors[-1]
        siblings = [e for e in html.elements if e.ancestors and e.ancestors[-1] is parent]
        return siblings.index(element) + 1 == int(nth)
    return True


def visible_cells(html: Page, row: Element) -> list[Element]:
    cells = [e for e in html.elements if e.tag in ("th", "td") and e.ancestors[-1] is row]
    return [c for c in cells if not any(matches(html, c, s) for s in hidden_on_phones())]


def test_a_phone_shows_the_subtotal_the_discount_and_the_total(client, make_book, make_promotion):
    make_promotion(buy_quantity=2)
    for price in ("10.00", "8.00", "6.00"):
        add(client, make_book(price))

    html = page(client.get("/cart/"))

    assert hidden_on_phones(), "the phone layout hides the price column"
    [header] = [e for e in html.find("tr") if e.ancestors[-1].tag == "thead"]
    columns = [c.clean_text for c in visible_cells(html, header)]
    assert "Price" not in columns
    total_column = columns.index("Total")
    for amount in ("cart-subtotal", "cart-discount", "cart-total"):
        cell = html.by_id(amount)
        row = cell.ancestors[-1]
        shown = visible_cells(html, row)
        # Shown, and under the "Total" heading like every line's total.
        assert cell in shown, f"#{amount} is hidden on phones"
        assert shown.index(cell) == total_column
    for row in (e for e in html.find("tr") if "data-book-id" in e.attrs):
        assert visible_cells(html, row)[total_column].clean_text.startswith("$")


def test_the_cart_warns_about_lines_past_the_stock_before_place_order(shopper, make_book):
    dune, emma = make_book("10.00", stock=5, title="Dune"), make_book("8.00", stock=5)
    add(shopper, dune, 3)
    add(shopper, emma, 2)
    html = page(shopper.get("/cart/"))
    assert not html.has_id("stock-warning")
    assert "disabled" not in html.by_id("checkout").attrs

    Book.objects.filter(pk=dune.pk).update(stock=1)  # sold elsewhere meanwhile
    Book.objects.filter(pk=emma.pk).update(stock=0)
    html = page(shopper.get("/cart/"))

    warnings = {
        int(row.attrs["data-book-id"]): " ".join(
            e.clean_text for e in html.find("p") if row in e.ancestors
        )
        for row in html.find("tr")
        if "short" in row.attrs.get("class", "")
    }
    assert warnings == {
        dune.pk: "Only 1 left: lower the quantity to 1.",
        emma.pk: "Sold out: remove it to place the order.",
    }
    assert "Change the quantities marked above" in html.text("stock-warning")
    assert "disabled" in html.by_id("checkout").attrs

    shopper.post(f"/cart/update/{dune.pk}/", {"quantity": 1})
    shopper.post(f"/cart/remove/{emma.pk}/")
    html = page(shopper.get("/cart/"))
    assert not html.has_id("stock-warning")
    assert checkout(shopper, expected_total="10.00").status_code == 302


@pytest.fixture
def shopper(customer, client):
    client.force_login(customer)
    return client


def test_pages_that_show_the_cart_are_never_kept_in_the_browsers_cache(shopper, make_book):
    """Back after a checkout must ask again, not show the bought cart with "Place order"."""
    book = make_book("10.00", stock=5)
    add(shopper, book, 2)
    refused = checkout(shopper, expected_total="1.00")  # the cart again, with the reason
    assert refused.status_code == 409

    for response in (shopper.get("/cart/"), refused, shopper.get(f"/books/{book.pk}/")):
        assert "no-store" in response["Cache-Control"]
