"""Signing in against guessing, and every page under a Content-Security-Policy.

django-axes counts failed sign-ins per account and address: after five, that
pair is refused (from the fifth) for a quarter of an hour, even with the right password,
while the account signs in from elsewhere and the address signs in others.
django-csp sends one policy on every response: only the site's own scripts
and styles run, so the pages themselves must carry no inline ones.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.marketplace.test_views import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def sign_in(address: str, username: str, password: str) -> int:
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": username, "password": password})
    return response.status_code


def test_five_failed_sign_ins_lock_that_account_out_from_that_address(make_user) -> None:
    make_user("ann")
    make_user("bob")
    for _ in range(4):
        assert sign_in("203.0.113.7", "ann", "not her password") == 200  # the form again
    assert sign_in("203.0.113.7", "ann", "not her password") == 429  # the fifth

    client = Client(REMOTE_ADDR="203.0.113.7")
    response = client.post(LOGIN, {"username": "ann", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "Try again in 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The account from another address, and another account from this one.
    assert sign_in("198.51.100.2", "ann", PASSWORD) == 302
    assert sign_in("203.0.113.7", "bob", PASSWORD) == 302


def test_a_successful_sign_in_starts_the_count_again(make_user) -> None:
    make_user("ann")
    for _ in range(4):
        sign_in("203.0.113.7", "ann", "wrong")
    assert sign_in("203.0.113.7", "ann", PASSWORD) == 302
    for _ in range(4):
        sign_in("203.0.113.7", "ann", "wrong")
    assert sign_in("203.0.113.7", "ann", PASSWORD) == 302


def test_the_admin_sign_in_is_counted_too(make_user) -> None:
    make_user("boss", is_staff=True)
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        client.post("/admin/login/", {"username": "boss", "password": "guess"})
    response = client.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert response.status_code == 429


@pytest.mark.parametrize(
    "path",
    ["/", "/?category=fantasy", "/cart/", LOGIN, "/accounts/signup/", "/admin/login/"],
)
def test_every_page_carries_the_policy_and_nothing_inline_it_would_block(
    client, make_book, path: str
) -> None:
    make_book(title="Dune")
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    html = response.content.decode()
    # An executable inline script, an inline handler, or inline style: blocked by the policy.
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"<style|\sstyle=", html)


def test_the_staff_pages_carry_nothing_inline_either(client, staff, make_book, make_promotion):
    make_book(title="Dune")
    promotion = make_promotion()
    client.force_login(staff)
    for path in (
        "/admin/",
        "/admin/catalog/book/",
        f"/admin/promotions/promotion/{promotion.pk}/change/",
        f"/admin/promotions/promotion/{promotion.pk}/report/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert not re.search(
            r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", html
        ), path
        assert not re.search(r"<style|\sstyle=", html), path
