"""One session's requests at the same moment, as tabs of one browser send them:
real HTTP to a live server, whose threads each have their own database
connection. Runs on SQLite and, in make test's second pass, on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPResponse
from typing import TypeVar
from urllib.error import HTTPError

import pytest

from marketplace_site.catalog.models import Book
from marketplace_site.orders.models import Order
from tests.marketplace.test_views import PASSWORD, Page, checkout_form
from tests.shopper import Shopper

pytestmark = pytest.mark.django_db(transaction=True)

TABS = 8
T = TypeVar("T")


def at_once(count: int, send: Callable[[int], T]) -> list[T]:
    """``send(0)`` ... ``send(count - 1)``, each in a thread of its own, released together."""
    ready = threading.Barrier(count, timeout=30)

    def when_all_are_ready(i: int) -> T:
        ready.wait()
        return send(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(when_all_are_ready, range(count)))


def redirects(responses: list[HTTPResponse]) -> list[tuple[int, str]]:
    return [(r.status, r.headers["Location"]) for r in responses]


def cart_shown(shopper: Shopper) -> dict[int, int]:
    """The cart's lines as its page shows them: book id -> quantity."""
    html = Page(shopper.request("/cart/").read().decode())
    return {
        int(row.attrs["data-book-id"]): int(
            html.input_value("quantity", form_action=f"/cart/update/{row.attrs['data-book-id']}/")
        )
        for row in html.find("tr")
        if "data-book-id" in row.attrs
    }


@pytest.fixture
def shopper(live_server, customer) -> Shopper:
    shopper = Shopper(live_server.url)
    shopper.log_in(customer.username, PASSWORD)
    return shopper


def test_parallel_adds_in_one_session_all_count(shopper, make_book):
    books = [make_book(stock=5) for _ in range(TABS)]

    added = at_once(TABS, lambda i: shopper.request(f"/cart/add/{books[i].pk}/", {"quantity": "1"}))

    assert redirects(added) == [(302, "/cart/")] * TABS
    assert cart_shown(shopper) == {book.pk: 1 for book in books}

    # The same book from every tab adds up too.
    again = at_once(TABS, lambda i: shopper.request(f"/cart/add/{books[0].pk}/", {"quantity": "1"}))
    statuses = sorted(r.status for r in again)
    # Five in stock: one already in the cart, four more fit, the rest are refused.
    assert statuses == [302] * 4 + [409] * (TABS - 4)
    assert cart_shown(shopper) == {books[0].pk: 5} | {book.pk: 1 for book in books[1:]}


def test_one_cart_posted_from_many_pages_at_once_is_bought_once(shopper, make_book):
    book = make_book("10.00", stock=100)
    shopper.request(f"/cart/add/{book.pk}/", {"quantity": "2"})
    # One cart page per tab, each with a checkout key of its own.
    tabs = [checkout_form(shopper.request("/cart/").read().decode()) for _ in range(TABS)]
    assert len({tab["checkout_key"] for tab in tabs}) == TABS

    posted = at_once(TABS, lambda i: shopper.request("/checkout/", tabs[i]))

    assert Order.objects.count() == 1, redirects(posted)
    order = Order.objects.get()
    assert redirects(posted) == [(302, f"/orders/{order.pk}/")] * TABS
    assert Book.objects.get(pk=book.pk).stock == 98
    assert cart_shown(shopper) == {}


def visitor_with(live_server, *books: Book) -> Shopper:
    """An anonymous visitor with one copy of each book in their cart, at the login page."""
    visitor = Shopper(live_server.url)
    assert visitor.request("/accounts/login/").status == 200
    for book in books:
        assert visitor.request(f"/cart/add/{book.pk}/", {"quantity": "1"}).status == 302
    return visitor


def log_in_as(visitor: Shopper, username: str) -> HTTPResponse | HTTPError:
    return visitor.request("/accounts/login/", {"username": username, "password": PASSWORD})


def test_carts_of_many_sessions_logging_in_at_once_all_join_the_account(
    live_server, customer, make_book
):
    """Phone, laptop, tablet...: each filled a cart before logging in to the same account."""
    books, everyones = [make_book(stock=5) for _ in range(TABS)], make_book(stock=5)
    visitors = [visitor_with(live_server, books[i], everyones) for i in range(TABS)]

    logged_in = at_once(TABS, lambda i: log_in_as(visitors[i], customer.username))

    assert redirects(logged_in) == [(302, "/")] * TABS
    expected = {book.pk: 1 for book in [*books, everyones]}
    assert [cart_shown(v) for v in visitors] == [expected] * TABS


def test_one_session_logging_in_from_many_tabs_at_once_brings_its_cart_once(
    live_server, customer, make_book
):
    book = make_book(stock=5)
    visitor = visitor_with(live_server, book)
    visitor.request(f"/cart/update/{book.pk}/", {"quantity": "3"})

    logged_in = at_once(TABS, lambda i: log_in_as(visitor, customer.username))

    assert [r.status for r in logged_in] == [302] * TABS
    assert cart_shown(visitor) == {book.pk: 3}
