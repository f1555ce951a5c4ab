"""How an order's discounts fall on its lines, on plain values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace_site.orders.discount_shares import (
    LineDiscount,
    line_discounts,
    line_discounts_guessed,
    split_by_weight,
)
from marketplace_site.pricing import PricedLine, PromotionRule, quote, with_voucher


def line(book_id: int, price: str, quantity: int = 1, category: int = 0) -> PricedLine:
    return PricedLine(book_id, f"Book {book_id}", category, Decimal(price), quantity)


def money(*amounts: str) -> list[Decimal]:
    return [Decimal(a) for a in amounts]


def test_the_promotion_falls_on_the_free_book_the_voucher_on_what_each_line_cost_after_it():
    # Two books and a free third, then 10% off the 22.00 left: 2.20.
    lines = [line(1, "12.00"), line(2, "10.00"), line(3, "8.00")]
    priced = with_voucher(quote(lines, [PromotionRule(1, "Buy 2", 2)]), Decimal("10"))
    assert (priced.free_book_id, priced.discount, priced.voucher_discount) == (
        3,
        Decimal("8.00"),
        Decimal("2.20"),
    )

    shares = line_discounts(
        priced.lines,
        free_book_id=priced.free_book_id,
        promotion_discount=priced.discount,
        voucher_discount=priced.voucher_discount,
    )
    assert shares == [
        LineDiscount(Decimal("0.00"), Decimal("1.20")),
        LineDiscount(Decimal("0.00"), Decimal("1.00")),
        LineDiscount(Decimal("8.00"), Decimal("0.00")),
    ]


def test_cents_left_by_rounding_go_to_the_largest_remainders():
    # 1.00 over three equal lines: 0.33 each and one cent left, to the first.
    assert split_by_weight(Decimal("1.00"), money("5.00", "5.00", "5.00")) == money(
        "0.34", "0.33", "0.33"
    )
    # 0.10 by 1 : 2 is 0.0333 : 0.0667; the second's remainder is the larger.
    assert split_by_weight(Decimal("0.10"), money("1.00", "2.00")) == money("0.03", "0.07")
    assert split_by_weight(Decimal("0"), money("1.00", "2.00")) == money("0.00", "0.00")
    with pytest.raises(ValueError, match=r"cannot share 1\.00"):
        split_by_weight(Decimal("1.00"), money("0.00"))


@given(
    prices=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2),
        min_size=1,
        max_size=6,
    ),
    percent_off=st.sampled_from(["0", "5", "10", "12.5", "33", "100"]),
)
def test_every_order_shares_out_exactly_its_discounts_and_no_line_goes_below_zero(
    prices, percent_off
):
    lines = [line(i, str(price), quantity=1 + i % 2) for i, price in enumerate(prices, start=1)]
    priced = with_voucher(quote(lines, [PromotionRule(1, "Buy 2", 2)]), Decimal(percent_off))
    shares = line_discounts(
        priced.lines,
        free_book_id=priced.free_book_id,
        promotion_discount=priced.discount,
        voucher_discount=priced.voucher_discount,
    )
    assert sum(s.promotion for s in shares) == priced.discount
    assert sum(s.voucher for s in shares) == priced.voucher_discount
    paid = [ln.line_total - s.promotion - s.voucher for ln, s in zip(lines, shares, strict=True)]
    assert min(paid) >= 0
    assert sum(paid) == priced.total


def test_without_its_free_book_an_order_gives_the_discount_to_the_line_at_that_price():
    """An event from before lines carried their shares: the promotion's
    discount is the free unit's price, so the line at that price took it."""
    lines = [line(5, "12.00"), line(6, "8.00", quantity=2), line(4, "10.00")]
    shares = line_discounts_guessed(
        lines, promotion_discount=Decimal("8.00"), voucher_discount=Decimal("0")
    )
    assert [s.promotion for s in shares] == money("0.00", "8.00", "0.00")

    # Two lines at that price: the lower book id, as pricing picks it.
    lines = [line(9, "8.00"), line(7, "8.00"), line(8, "20.00")]
    shares = line_discounts_guessed(
        lines, promotion_discount=Decimal("8.00"), voucher_discount=Decimal("0")
    )
    assert [s.promotion for s in shares] == money("0.00", "8.00", "0.00")

    # No line at that price (it cannot happen, but): spread by line totals.
    shares = line_discounts_guessed(
        [line(1, "30.00"), line(2, "10.00")],
        promotion_discount=Decimal("4.00"),
        voucher_discount=Decimal("0"),
    )
    assert [s.promotion for s in shares] == money("3.00", "1.00")
