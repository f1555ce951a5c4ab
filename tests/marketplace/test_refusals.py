"""Every page that refuses something says what went wrong and what to do, in
the customer's words, and offers a way back; the book page offers only what
the cart can still take."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from marketplace_site.orders.models import Order
from tests.marketplace.test_views import Page, add, cart_of, checkout, page

pytestmark = pytest.mark.django_db


def ways_back(html: Page) -> set[str]:
    """Where the refusal's links lead."""
    return {
        e.attrs["href"]
        for e in html.find("a")
        if any(a.attrs.get("class") == "ways-back" for a in e.ancestors)
    }


def add_form(html: Page, book) -> dict[str, str] | None:
    """The book page's quantity input, if it offers to add the book at all."""
    inputs = [
        e.attrs
        for e in html.find("input", name="quantity")
        if any(a.attrs.get("action") == f"/cart/add/{book.pk}/" for a in e.ancestors)
    ]
    return inputs[0] if inputs else None


# --- the book page ---------------------------------------------------------------


def test_the_book_page_offers_only_what_the_cart_can_still_take(client, make_book):
    book = make_book(stock=3)
    assert add_form(page(client.get(f"/books/{book.pk}/")), book)["max"] == "3"

    add(client, book, 2)
    html = page(client.get(f"/books/{book.pk}/"))
    assert add_form(html, book)["max"] == "1"
    assert html.text("in-cart") == "Your cart has 2. See your cart"

    add(client, book, 1)
    html = page(client.get(f"/books/{book.pk}/"))
    assert add_form(html, book) is None
    assert html.text("in-cart") == "Your cart has 3: every copy we have. See your cart"


def test_the_book_page_stops_at_the_most_one_order_can_take(client, make_book):
    book = make_book(stock=50)
    add(client, book, 20)
    html = page(client.get(f"/books/{book.pk}/"))
    assert add_form(html, book) is None
    said = html.text("in-cart")
    assert said == "Your cart has 20: the most one order can take (20). See your cart"


# --- refusal pages ---------------------------------------------------------------


def test_adding_past_the_stock_says_how_many_still_fit_and_links_back(client, make_book):
    book = make_book(stock=3, title="Dune")
    add(client, book, 2)

    response = add(client, book, 2)

    assert response.status_code == 409
    html = page(response)
    assert html.text("refusal") == (
        "Your cart has 2 of “Dune” already (3 in stock): you can add 1 more."
    )
    assert ways_back(html) == {f"/books/{book.pk}/", "/cart/", "/"}
    assert cart_of(client) == {book.pk: 2}


@pytest.mark.parametrize(
    ("quantity", "said"),
    [
        ("abc", "Enter the number of copies as a whole number, like 2."),
        ("", "Enter how many copies you want."),
        ("0", "Add at least one copy."),
        ("21", "You can buy at most 20 copies of a book in one order."),
        (str(10**30), "You can buy at most 20 copies of a book in one order."),
    ],
)
def test_a_quantity_refused_is_said_without_the_fields_name(client, make_book, quantity, said):
    book = make_book(stock=50)

    response = add(client, book, quantity)

    assert response.status_code == 400
    html = page(response)
    assert html.text("refusal") == said
    assert "quantity:" not in response.content.decode()
    assert ways_back(html) == {f"/books/{book.pk}/", "/cart/", "/"}


def test_a_cart_line_set_past_the_stock_is_refused_with_a_way_back(client, make_book):
    book = make_book(stock=4, title="Emma")
    add(client, book, 1)

    response = client.post(f"/cart/update/{book.pk}/", {"quantity": "9"})

    assert response.status_code == 409
    html = page(response)
    assert html.text("refusal") == "You can buy at most 4 of “Emma” (4 in stock)."
    assert ways_back(html) == {f"/books/{book.pk}/", "/cart/", "/"}


def test_a_cart_page_older_than_the_cart_says_so(client, make_book):
    """Remove, in a tab still showing a line another tab removed."""
    book = make_book()
    add(client, book)
    client.post(f"/cart/remove/{book.pk}/")

    response = client.post(f"/cart/remove/{book.pk}/")

    assert response.status_code == 404
    html = page(response)
    assert "not in your cart any more" in html.text("refusal")
    assert ways_back(html) == {"/cart/", "/"}


def test_an_unreadable_order_form_is_refused_in_words(client, customer, make_book):
    client.force_login(customer)
    add(client, make_book("10.00"))

    response = checkout(client, expected_total="NaN", cart_version="-4")

    assert response.status_code == 400
    html = page(response)
    assert html.text("refusal") == (
        "This order form could not be read. Open your cart and place the order there."
    )
    assert "expected_total" not in response.content.decode()
    assert not Order.objects.exists()


def test_a_voucher_code_refused_is_shown_as_typed(client, customer, make_book):
    client.force_login(customer)
    add(client, make_book("10.00"))

    response = client.post("/cart/", {"voucher_code": " abcd-efgh "})

    assert response.status_code == 400
    said = page(response).text("voucher-error")
    assert said == "There is no voucher “abcd-efgh” on your account."


def test_a_voucher_code_too_long_is_refused_on_the_cart_page(client, make_book):
    add(client, make_book("10.00"))

    response = client.post("/cart/", {"voucher_code": "X" * 41})

    assert response.status_code == 400
    html = page(response)
    assert html.text("voucher-error").startswith("A voucher code has at most 40 characters")
    assert html.has_id("cart-total")  # the cart, to carry on from


def test_the_shops_own_not_found_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    html = page(response)
    assert html.find("h1")[0].clean_text == "We could not find that page"
    assert ways_back(html) == {"/", "/cart/"}


def test_a_refused_csrf_token_gets_the_shops_page(make_book):
    browser = Client(enforce_csrf_checks=True)

    response = add(browser, make_book())

    assert response.status_code == 403
    html = page(response)
    assert "reload the page and send it again" in html.text("refusal")
    assert ways_back(html) == {"/", "/cart/"}


def test_the_shops_own_error_page(db):
    response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    html = Page(response.content.decode())
    assert html.find("h1")[0].clean_text == "Something broke on our side"
    assert ways_back(html) == {"/", "/cart/", "/orders/"}
