"""Pricing rules on plain values."""

from __future__ import annotations

from decimal import Decimal

from marketplace_site.pricing import PricedLine, PromotionRule, quote

MYSTERY, SF = 0, 1


def line(book_id: int, price: str, quantity: int = 1, category: int = MYSTERY) -> PricedLine:
    return PricedLine(book_id, f"Book {book_id}", category, Decimal(price), quantity)


BUY_TWO = PromotionRule(promotion_id=1, name="Buy 2", buy_quantity=2)


def test_no_promotion_total_is_the_sum_of_lines():
    result = quote([line(1, "10.00", 2), line(2, "4.50")], [])
    assert (result.subtotal, result.discount, result.total) == (
        Decimal("24.50"),
        Decimal("0.00"),
        Decimal("24.50"),
    )
    assert result.promotion is None


def test_two_books_are_not_enough_for_buy_two():
    assert quote([line(1, "10.00"), line(2, "12.00")], [BUY_TWO]).discount == 0


def test_three_books_make_the_cheapest_free():
    result = quote([line(1, "10.00"), line(2, "12.00"), line(3, "7.99")], [BUY_TWO])
    assert result.discount == Decimal("7.99")
    assert result.total == Decimal("22.00")
    assert result.free_book_id == 3
    assert result.promotion == BUY_TWO


def test_quantities_count_so_three_copies_qualify_and_one_copy_is_free():
    result = quote([line(1, "9.00", 3)], [BUY_TWO])
    assert (result.discount, result.total, result.free_book_id) == (
        Decimal("9.00"),
        Decimal("18.00"),
        1,
    )


def test_only_one_book_is_free_however_large_the_order():
    result = quote([line(1, "5.00", 10)], [BUY_TWO])
    assert result.discount == Decimal("5.00")


def test_a_category_scope_counts_and_frees_only_its_books():
    rule = PromotionRule(promotion_id=2, name="SF", buy_quantity=2, category_code=SF)
    mixed = [line(1, "3.00"), line(2, "10.00", category=SF), line(3, "11.00", category=SF)]
    assert quote(mixed, [rule]).discount == 0
    mixed.append(line(4, "15.00", category=SF))
    result = quote(mixed, [rule])
    assert (result.discount, result.free_book_id) == (Decimal("10.00"), 2)


def test_the_rule_saving_most_wins_and_ties_go_to_the_oldest():
    sf_only = PromotionRule(promotion_id=5, name="SF", buy_quantity=1, category_code=SF)
    lines = [line(1, "4.00"), line(2, "20.00", category=SF), line(3, "25.00", category=SF)]
    assert quote(lines, [BUY_TWO, sf_only]).promotion == sf_only
    same = PromotionRule(promotion_id=9, name="Also buy 2", buy_quantity=2)
    assert quote(lines, [same, BUY_TWO]).promotion == BUY_TWO


def test_equal_prices_free_the_lowest_book_id():
    result = quote([line(7, "5.00"), line(3, "5.00"), line(9, "5.00")], [BUY_TWO])
    assert result.free_book_id == 3
