"""A customer's cart belongs to the account: kept across logout and login and
on every device; a visitor's cart joins it at login."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace_site.orders.models import Cart, Order
from tests.marketplace.test_views import PASSWORD, add, cart_of, checkout, checkout_form

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str = "alice") -> None:
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302


def test_logging_out_and_in_again_keeps_the_cart(client, customer, make_book):
    book = make_book(stock=5)
    log_in(client)
    add(client, book, 2)

    client.post("/accounts/logout/")

    # The next person at this computer sees an empty cart, not the customer's.
    assert cart_of(client) == {}
    assert "Your cart is empty" in client.get("/cart/").content.decode()
    log_in(client)
    assert cart_of(client) == {book.pk: 2}


def test_the_cart_is_the_same_on_every_device(customer, make_book):
    book = make_book(stock=5)
    phone, laptop = Client(), Client()
    log_in(phone)
    log_in(laptop)

    add(phone, book, 3)

    assert cart_of(laptop) == {book.pk: 3}
    assert f'data-book-id="{book.pk}"' in laptop.get("/cart/").content.decode()


def test_a_visitors_cart_joins_the_account_at_login(client, customer, make_book):
    only_owned, in_both, only_visited = (make_book(stock=9) for _ in range(3))
    elsewhere = Client()
    log_in(elsewhere)
    add(elsewhere, only_owned)
    add(elsewhere, in_both, 2)
    add(client, in_both, 3)
    add(client, only_visited)
    visitors_page = checkout_form(client.get("/cart/").content.decode())

    log_in(client)

    # A book in both keeps the larger quantity: the same wish, made twice.
    merged = {only_owned.pk: 1, in_both.pk: 3, only_visited.pk: 1}
    assert cart_of(client) == cart_of(elsewhere) == merged
    assert Cart.objects.count() == 1
    # The visitor's old cart page buys nothing: it did not show this cart.
    response = checkout(client, **visitors_page)
    assert response.status_code == 409
    assert not Order.objects.exists()
    assert cart_of(client) == merged


def test_a_visitor_with_no_account_cart_brings_theirs(client, customer, make_book):
    book = make_book("10.00", stock=5)
    add(client, book, 2)

    log_in(client)

    assert cart_of(client) == {book.pk: 2}
    assert Cart.objects.get().user == customer
    # Nothing is left with the session to join the account a second time.
    log_in(client)
    assert cart_of(client) == {book.pk: 2}


def test_logged_out_in_another_tab_the_cart_waits_for_the_login(client, customer, make_book):
    book = make_book("10.00", stock=5)
    log_in(client)
    add(client, book, 2)
    open_tab = checkout_form(client.get("/cart/").content.decode())
    client.post("/accounts/logout/")  # the other tab

    refused = checkout(client, **open_tab)

    assert refused["Location"] == "/accounts/login/?next=/cart/"
    log_in(client)
    assert cart_of(client) == {book.pk: 2}
    # The page shown before logging out still buys that same cart.
    placed = checkout(client, **open_tab)
    assert placed["Location"] == f"/orders/{Order.objects.get().pk}/"
    assert cart_of(client) == {}
