"""What the banner and the cart say about a promotion is what its rule does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from marketplace_site.orders.services import order_checkout
from marketplace_site.pricing import PricedLine, PromotionRule, quote
from marketplace_site.promotions.wording import rule_text
from tests.marketplace.test_views import MINUS, add, page

pytestmark = pytest.mark.django_db
FANTASY = 3  # the contract's code


def banners(response) -> list[dict[str, str]]:
    """Each banner's parts, by class, as the visitor reads them."""
    html = page(response)
    return [
        {
            e.attrs["class"]: e.clean_text
            for e in html.elements
            if e.attrs.get("class", "").startswith("banner-") and aside in e.ancestors
        }
        for aside in html.find("aside")
    ]


def notes(response) -> dict[int, str]:
    html = page(response)
    return {
        int(e.attrs["data-promotion-id"]): e.clean_text
        for e in html.find("li")
        if e.within("promotion-notes")
    }


@pytest.mark.parametrize(
    ("buy", "category", "words"),
    [
        (2, None, "Buy 2, get a 3rd free — the cheapest"),
        (1, None, "Buy 1, get a 2nd free — the cheapest"),
        (1, "Fantasy", "Buy 1 Fantasy book, get a 2nd free — the cheapest"),
        (10, "Science Fiction", "Buy 10 Science Fiction books, get an 11th free — the cheapest"),
    ],
)
def test_the_rule_in_words(buy, category, words):
    rule = PromotionRule(promotion_id=1, name="x", buy_quantity=buy, category_name=category)
    assert rule_text(rule) == words


@pytest.mark.parametrize("buy", [1, 2, 3, 7, 10])
def test_the_book_the_words_call_free_is_the_first_the_rule_gives(buy):
    """ "get a 3rd free": two books get nothing, the third gets the cheapest."""
    rule = PromotionRule(promotion_id=1, name="x", buy_quantity=buy)
    nth = int("".join(c for c in rule_text(rule).split("get a")[1] if c.isdigit()))
    lines = [PricedLine(i, f"B{i}", 0, Decimal("5.00") + i, 1) for i in range(nth)]
    assert quote(lines[: nth - 1], [rule]).discount == 0
    assert quote(lines, [rule]).discount == Decimal("5.00")


def test_a_banner_states_the_rule_once_under_its_own_headline(client, make_promotion):
    make_promotion(name="Reading week", buy_quantity=2)
    make_promotion(name="Buy 2, get a 3rd free — the cheapest", buy_quantity=2)

    shown = banners(client.get("/"))

    # Every banner is built alike: the headline (when it adds something), the rule, the terms.
    assert [sorted(b) for b in shown] == [
        ["banner-headline", "banner-rule", "banner-terms"],
        ["banner-rule", "banner-terms"],
    ]
    assert shown[0]["banner-headline"] == "Reading week"
    assert {b["banner-rule"] for b in shown} == {"Buy 2, get a 3rd free — the cheapest"}
    assert all(b["banner-terms"].startswith("Once per customer, until ") for b in shown)


def test_a_one_book_category_promotion_says_book_not_books(client, make_promotion, categories):
    make_promotion(name="Fantasy friday", buy_quantity=1, category=categories["fantasy"])
    [shown] = banners(client.get("/"))
    assert shown["banner-rule"] == "Buy 1 Fantasy book, get a 2nd free — the cheapest"


def test_the_cart_nudges_until_the_promotion_applies_then_shows_its_rule(
    client, make_book, make_promotion
):
    promotion = make_promotion(name="Reading week", buy_quantity=2)
    books = [make_book("10.00"), make_book("8.00"), make_book("6.00")]

    add(client, books[0])
    assert notes(client.get("/cart/")) == {
        promotion.pk: "Reading week (Buy 2, get a 3rd free — the cheapest): "
        "Add two more books and the cheapest is free."
    }
    add(client, books[1])
    assert notes(client.get("/cart/"))[promotion.pk].endswith(
        "Add one more book and the cheapest is free."
    )
    add(client, books[2])
    html = page(client.get("/cart/"))
    assert not html.has_id("promotion-notes")
    [row] = [e for e in html.find("tr") if e.attrs.get("class") == "discount"]
    assert row.clean_text == f"Reading week (Buy 2, get a 3rd free — the cheapest){MINUS}$6.00"


def test_the_cart_says_which_books_count(client, make_book, make_promotion, categories):
    promotion = make_promotion(name="Fantasy week", buy_quantity=2, category=categories["fantasy"])
    add(client, make_book(category="mystery"), 3)

    [said] = notes(client.get("/cart/")).values()

    assert said.endswith(
        "Only Fantasy books count, and your cart has none: "
        "add three Fantasy books and the cheapest is free."
    )
    add(client, make_book(category="fantasy"))
    assert notes(client.get("/cart/"))[promotion.pk].endswith(
        "Add two more Fantasy books and the cheapest is free."
    )


def test_the_cart_says_why_a_promotion_no_longer_applies(
    customer, make_user, make_book, make_promotion, categories
):
    now = timezone.now()
    used = make_promotion(name="Used", buy_quantity=1, category=categories["fantasy"])
    taken = make_promotion(name="Taken", buy_quantity=1, global_limit=1)
    ended = make_promotion(
        name="Ended", starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=2)
    )
    make_promotion(  # long over: nobody can still expect it
        name="Forgotten", starts_at=now - timedelta(days=30), ends_at=now - timedelta(days=8)
    )
    book = make_book("10.00", stock=20, category="fantasy")
    order_checkout(user=customer, items={book.pk: 2})  # "Used": the oldest of the two
    other = make_book("10.00", category="mystery")
    order_checkout(user=make_user("bob"), items={other.pk: 2})  # the last use of "Taken"
    client = Client()
    client.force_login(customer)
    add(client, book, 2)

    said = notes(client.get("/cart/"))

    assert said.keys() == {used.pk, taken.pk, ended.pk}
    assert said[used.pk].endswith("You have used it already: once per customer.")
    assert said[taken.pk].endswith("Every use of it has been taken.")
    ends = timezone.localdate(ended.ends_at)
    assert said[ended.pk].endswith(f"It ended on {ends:%b} {ends.day}.")


def test_the_cart_says_one_promotion_applies_per_order(client, make_book, make_promotion):
    make_promotion(name="Buy 2", buy_quantity=2)
    lesser = make_promotion(name="Buy 3", buy_quantity=3)
    for price in ("10.00", "8.00", "6.00", "4.00"):
        add(client, make_book(price))

    html = page(client.get("/cart/"))

    assert html.text("cart-discount") == f"{MINUS}$4.00"
    assert notes(client.get("/cart/")) == {
        lesser.pk: "Buy 3 (Buy 3, get a 4th free — the cheapest): "
        "One promotion per order: “Buy 2” saves more."
    }


@pytest.mark.parametrize(
    ("buy", "article"),
    [
        (1, "a 2nd"),
        (7, "an 8th"),
        (10, "an 11th"),
        (11, "a 12th"),
        (17, "an 18th"),
        (79, "an 80th"),
    ],
)
def test_the_article_is_the_one_the_number_takes_aloud(buy, article):
    rule = PromotionRule(promotion_id=1, name="x", buy_quantity=buy)
    assert f"get {article} free" in rule_text(rule)
