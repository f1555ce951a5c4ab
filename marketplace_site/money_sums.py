"""Sums of money read from the database, to the cent."""

from __future__ import annotations

from decimal import Context, Decimal

CENT = Decimal("0.01")


def cents(amount: Decimal | None) -> Decimal:
    """A sum to the cent (None: nothing to add up), however many digits
    SQLite let it grow to (it adds decimals as floats, 137.450000000000):
    the default context's 28 would raise past them."""
    if amount is None:
        return Decimal("0.00")
    if not amount.is_finite():
        return amount
    return amount.quantize(CENT, context=Context(prec=max(amount.adjusted() + 4, 1)))
