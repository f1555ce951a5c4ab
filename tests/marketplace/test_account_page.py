"""/account/ as a customer uses it: their orders with each one's status, their
vouchers available and used, and changing their e-mail address and password
(one account per address, as at sign-up)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from marketplace_site.accounts import forms as account_forms
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout
from tests.marketplace.test_views import PASSWORD, page

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(customer) -> Client:
    client = Client()
    client.force_login(customer)
    return client


def test_visitors_are_asked_to_log_in(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/account/")


def test_the_customer_sees_their_orders_with_each_ones_status(
    shopper, customer, make_user, make_book
):
    dune = make_book(title="Dune", price="12.00")
    first = order_checkout(user=customer, items={dune.pk: 1})
    second = order_checkout(user=customer, items={make_book(title="Emma").pk: 2})
    Order.objects.filter(pk=first.pk).update(status=Order.Status.SHIPPED)
    someone_elses = order_checkout(user=make_user("bob"), items={dune.pk: 1})

    html = page(shopper.get("/account/"))

    rows = {
        int(e.attrs["data-order-id"]): html.cells(e)
        for e in html.find("tr")
        if "data-order-id" in e.attrs
    }
    assert set(rows) == {first.pk, second.pk}
    assert someone_elses.pk not in rows
    assert rows[first.pk]["order-status"] == "Shipped"
    assert rows[second.pk]["order-status"] == "Placed"
    assert rows[first.pk]["num"] == "$12.00"
    assert html.find("a", href=f"/orders/{first.pk}/")
    # The header leads here.
    assert html.by_id("account-link").attrs["href"] == "/account/"


def test_the_customer_sees_vouchers_to_use_used_and_expired(
    shopper, customer, make_user, make_book, make_voucher
):
    available = make_voucher(customer, percent_off="10")
    used = make_voucher(customer, percent_off="15")
    order = order_checkout(user=customer, items={make_book().pk: 1}, voucher_code=used.code)
    expired = make_voucher(customer, percent_off="20", expires_at=timezone.now() - timedelta(1))
    someone_elses = make_voucher(make_user("bob"))

    html = page(shopper.get("/account/"))

    shown = {
        e.attrs["data-voucher"]: (e.attrs["class"], html.cells(e))
        for e in html.find("tr")
        if "data-voucher" in e.attrs
    }
    assert set(shown) == {available.code, used.code, expired.code}
    assert someone_elses.code not in shown
    state, cells = shown[available.code]
    assert (state, cells["voucher-off"]) == ("available", "10%")
    assert cells["voucher-state"].startswith("Available")
    state, cells = shown[used.code]
    assert (state, cells["voucher-state"]) == ("used", f"Used on order #{order.pk}")
    assert html.find("a", href=f"/orders/{order.pk}/")
    state, cells = shown[expired.code]
    assert state == "expired"
    assert cells["voucher-state"].startswith("Expired on")


def test_a_customer_without_orders_or_vouchers_is_told_so(shopper):
    html = page(shopper.get("/account/"))
    assert "No orders yet" in html.text("orders")
    assert "No vouchers yet" in html.text("vouchers")


def test_the_account_links_to_changing_the_address_and_the_password(shopper):
    html = page(shopper.get("/account/"))
    assert html.by_id("change-email").attrs["href"] == "/account/email/"
    assert html.by_id("change-password").attrs["href"] == "/accounts/password_change/"


def test_the_password_is_changed_in_the_shops_look(shopper, customer):
    form = shopper.get("/accounts/password_change/")
    assert form.status_code == 200
    assert page(form).find("header", **{"class": "site-header"})

    response = shopper.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "an even longer passphrase",
            "new_password2": "an even longer passphrase",
        },
    )

    assert response.status_code == 302
    done = shopper.get(response["Location"])
    assert "Your password is changed" in done.content.decode()
    assert page(done).find("a", href="/account/")
    customer.refresh_from_db()
    assert customer.check_password("an even longer passphrase")


def test_the_address_changes_with_the_password_and_is_kept_in_one_spelling(shopper, customer):
    response = shopper.post(
        "/account/email/", {"email": "Leser@XN--BCHER-KVA.example", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    customer.refresh_from_db()
    assert customer.email == "leser@bücher.example"
    account = shopper.get("/account/")
    assert page(account).text("account-email") == "leser@bücher.example"
    assert "Your e-mail address is now leser@bücher.example." in account.content.decode()


def test_a_wrong_password_changes_nothing(shopper, customer):
    response = shopper.post("/account/email/", {"email": "new@example.com", "password": "guess"})

    assert response.status_code == 400
    assert "That is not your password." in response.content.decode()
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"


def test_another_accounts_address_is_refused_in_any_case(shopper, customer, make_user):
    make_user("bob", email="bob@example.com")

    response = shopper.post("/account/email/", {"email": "BOB@Example.COM", "password": PASSWORD})

    assert response.status_code == 400
    assert "Another account has this e-mail address." in response.content.decode()
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"


def test_an_address_taken_after_the_form_was_checked_is_refused_by_the_database(
    shopper, customer, make_user, monkeypatch
):
    make_user("bob", email="bob@example.com")
    # As if bob took it between the form's check and the save.
    monkeypatch.setattr(account_forms, "address_taken", lambda *a, **k: False)

    response = shopper.post("/account/email/", {"email": "bob@example.com", "password": PASSWORD})

    assert response.status_code == 400
    assert "Another account has this e-mail address." in response.content.decode()
    assert User.objects.filter(email__iexact="bob@example.com").count() == 1
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"
