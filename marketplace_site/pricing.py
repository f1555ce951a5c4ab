"""Pricing a cart: the promotion and voucher rules as pure functions over plain
values (Decimal money), no database; orders, promotions and campaigns share it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class PricedLine:
    book_id: int
    title: str
    category_code: int
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """Buy ``buy_quantity``, get the cheapest eligible book free."""

    promotion_id: int
    name: str
    buy_quantity: int
    category_code: int | None = None
    # For the words only (promotions/wording.py); the code decides.
    category_name: str | None = None

    def applies_to(self, line: PricedLine) -> bool:
        return self.category_code is None or line.category_code == self.category_code


@dataclass(frozen=True, slots=True)
class Quote:
    lines: tuple[PricedLine, ...]
    subtotal: Decimal
    discount: Decimal
    total: Decimal
    promotion: PromotionRule | None = None
    free_book_id: int | None = None
    # Set by with_voucher(); total is then after the voucher too.
    voucher_percent_off: Decimal | None = None
    voucher_discount: Decimal = ZERO


def eligible_count(lines: Iterable[PricedLine], rule: PromotionRule) -> int:
    """The books (copies) of the lines that count towards the rule."""
    return sum(line.quantity for line in lines if rule.applies_to(line))


def missing_for(lines: Iterable[PricedLine], rule: PromotionRule) -> int:
    """How many more eligible books the lines need for one to be free (0: none)."""
    return max(0, rule.buy_quantity + 1 - eligible_count(lines, rule))


def free_book(lines: Iterable[PricedLine], rule: PromotionRule) -> tuple[Decimal, int] | None:
    """(price, book id) of the unit the rule gives free, if the cart qualifies:
    more than ``buy_quantity`` eligible books."""
    eligible = [line for line in lines if rule.applies_to(line)]
    if missing_for(eligible, rule):
        return None
    return min((line.unit_price, line.book_id) for line in eligible)


def quote(lines: Sequence[PricedLine], rules: Iterable[PromotionRule]) -> Quote:
    """Price the lines with the one rule that saves the most (ties: the oldest rule)."""
    subtotal = sum((line.line_total for line in lines), ZERO)
    best: tuple[Decimal, int, PromotionRule, int] | None = None
    for rule in rules:
        free = free_book(lines, rule)
        if free is None:
            continue
        price, book_id = free
        candidate = (price, -rule.promotion_id, rule, book_id)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        return Quote(tuple(lines), subtotal, ZERO, subtotal)
    discount, _, rule, book_id = best
    return Quote(tuple(lines), subtotal, discount, subtotal - discount, rule, book_id)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """``percent`` % of ``amount``, rounded half-up to the cent."""
    return (amount * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def with_voucher(priced: Quote, percent_off: Decimal) -> Quote:
    """The quote with a voucher's percentage taken off its total after the promotion."""
    off = min(percent_of(priced.total, percent_off), priced.total)
    return replace(
        priced, total=priced.total - off, voucher_percent_off=percent_off, voucher_discount=off
    )
