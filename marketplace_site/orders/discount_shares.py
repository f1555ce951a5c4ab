"""How an order's discounts fall on its lines: pure functions over Decimal money.

What each book brought in is its line total less its share of the order's
discounts: the promotion's falls on the line of the book it gave free, the
voucher's (taken off the total after the promotion) is spread over the lines
by what each cost after the promotion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from marketplace_site.pricing import CENT, ZERO, PricedLine


@dataclass(frozen=True, slots=True)
class LineDiscount:
    promotion: Decimal
    voucher: Decimal


def split_by_weight(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``amount`` (in cents) shared in proportion to ``weights``, adding up to
    it exactly: each share rounded down to the cent, the cents left over going
    one each to the largest remainders (ties: the earlier weight). No share
    exceeds its weight when ``amount`` is at most their sum."""
    if not amount:
        return [ZERO] * len(weights)
    whole = sum(weights, ZERO)
    if whole <= 0:
        raise ValueError(f"cannot share {amount} over weights adding up to {whole}")
    exact = [amount * weight / whole for weight in weights]
    shares = [share.quantize(CENT, rounding=ROUND_DOWN) for share in exact]
    left = int((amount - sum(shares, ZERO)) / CENT)
    by_remainder = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[:left]:
        shares[i] += CENT
    return shares


def line_discounts(
    lines: Sequence[PricedLine],
    *,
    free_book_id: int | None,
    promotion_discount: Decimal,
    voucher_discount: Decimal,
) -> list[LineDiscount]:
    """Each line's share of the order's discounts, in the lines' order. The
    promotion's is all on ``free_book_id``'s line; when that is not known it
    is spread by line totals instead."""
    totals = [line.line_total for line in lines]
    if free_book_id is None:
        promotion = split_by_weight(promotion_discount, totals)
    elif free_book_id in {line.book_id for line in lines}:
        promotion = [promotion_discount if line.book_id == free_book_id else ZERO for line in lines]
    else:
        raise ValueError(f"book {free_book_id}, given free, is not a line of the order")
    after_promotion = [total - share for total, share in zip(totals, promotion, strict=True)]
    voucher = split_by_weight(voucher_discount, after_promotion)
    return [LineDiscount(p, v) for p, v in zip(promotion, voucher, strict=True)]


def line_discounts_guessed(
    lines: Sequence[PricedLine], *, promotion_discount: Decimal, voucher_discount: Decimal
) -> list[LineDiscount]:
    """Each line's share of the discounts of an order whose free book is not
    known (its event came from a producer older than the shares, or it was
    recorded before them). The promotion gives one unit of its cheapest
    eligible book free, so the discount is that unit's price: the line at
    that price with the lowest book id takes it, as pricing picks it. Only a
    book outside the promotion's category at the very same price, with a
    lower id, can be taken for it; the order's figures stay right whatever."""
    at_that_price = [line.book_id for line in lines if line.unit_price == promotion_discount]
    free = min(at_that_price) if promotion_discount and at_that_price else None
    return line_discounts(
        lines,
        free_book_id=free,
        promotion_discount=promotion_discount,
        voucher_discount=voucher_discount,
    )
