"""What a promotion's rule says, and why it does or does not apply to a cart,
in the words the banner and the cart page use.

One place states the rule (marketplace_site/pricing.py: more than N eligible books, the
cheapest of them free, one per order); every sentence here is made from the
same numbers, so the words cannot promise what the rule does not give.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from django.contrib.humanize.templatetags.humanize import apnumber, ordinal

from marketplace_site.pricing import (
    PricedLine,
    PromotionRule,
    eligible_count,
    free_book,
    missing_for,
)

# Why a promotion the customer can see is not theirs to use now.
Unusable = Literal["used", "sold-out", "ended"]


def books(count: int, *, kind: str = "", more: bool = False) -> str:
    """ "one more book", "2 Fantasy books": a count of books as a sentence says it."""
    words = [str(apnumber(count)), "more" if more else "", kind, "book" if count == 1 else "books"]
    return " ".join(word for word in words if word)


def rule_text(rule: PromotionRule) -> str:
    """ "Buy 2, get a 3rd free — the cheapest" (with a category: "Buy 2
    Fantasy books, ..."). The words of pricing.free_book."""
    n = rule.buy_quantity
    bought = str(n)
    if rule.category_name:
        bought += f" {rule.category_name} {'book' if n == 1 else 'books'}"
    return f"Buy {bought}, get {_a(n + 1)} {ordinal(n + 1)} free — the cheapest"


def _a(number: int) -> str:
    """The article before the number said aloud: "an 8th", "an 11th", "a 12th"."""
    digits = str(number)
    # eight..., and eleven or eighteen (thousand, million) leading the number.
    vowel = digits[0] == "8" or (len(digits) % 3 == 2 and digits[:2] in ("11", "18"))
    return "an" if vowel else "a"


def per_customer_text(limit: int) -> str:
    if limit == 1:
        return "Once per customer"
    if limit == 2:
        return "Twice per customer"
    return f"Up to {limit} orders per customer"


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def headline_text(banner: str, rule: PromotionRule) -> str:
    """The banner's own words above the rule, or nothing when they only say the rule again."""
    return "" if _words(banner) == _words(rule_text(rule)) else banner


@dataclass(frozen=True)
class Banner:
    """A running promotion on the home page: every banner says the same three things."""

    promotion_id: int
    headline: str  # the staff's own words, if they add to the rule
    rule: str
    terms: str


def banner(rule: PromotionRule, *, text: str, per_customer_limit: int, ends_on: date) -> Banner:
    return Banner(
        promotion_id=rule.promotion_id,
        headline=headline_text(text, rule),
        rule=rule_text(rule),
        terms=f"{per_customer_text(per_customer_limit)}, until {ends_on:%b} {ends_on.day}.",
    )


@dataclass(frozen=True)
class PromotionNote:
    """One promotion on the cart page: what it would take, or why it does not apply."""

    promotion_id: int
    name: str
    rule: str
    kind: Literal["add-more", "other-applies", "used", "sold-out", "ended"]
    text: str


def promotion_notes(
    lines: Sequence[PricedLine],
    *,
    available: Sequence[PromotionRule],
    applied: PromotionRule | None,
    unusable: Sequence[tuple[PromotionRule, Unusable, int, date]] = (),
) -> list[PromotionNote]:
    """A note for each promotion that does not apply to these lines: those the
    customer can use (how many more eligible books it takes, or that another
    saves more: one promotion per order), then those they cannot (used up,
    every use taken, ended), each given as (rule, why, per-customer limit,
    end date). The one applied needs no note: its discount is on the bill."""
    notes = []
    for rule in available:
        if applied is not None and rule.promotion_id == applied.promotion_id:
            continue
        if applied is not None and free_book(lines, rule) is not None:
            kind, text = "other-applies", f"One promotion per order: “{applied.name}” saves more."
        else:
            kind, text = "add-more", _add_more(lines, rule)
        notes.append(PromotionNote(rule.promotion_id, rule.name, rule_text(rule), kind, text))
    for rule, why, limit, ends_on in unusable:
        if why == "used":
            text = f"You have used it already: {per_customer_text(limit).lower()}."
        elif why == "sold-out":
            text = "Every use of it has been taken."
        else:
            text = f"It ended on {ends_on:%b} {ends_on.day}."
        notes.append(PromotionNote(rule.promotion_id, rule.name, rule_text(rule), why, text))
    return notes


def _add_more(lines: Sequence[PricedLine], rule: PromotionRule) -> str:
    missing = missing_for(lines, rule)
    if rule.category_name and eligible_count(lines, rule) == 0:
        return (
            f"Only {rule.category_name} books count, and your cart has none: "
            f"add {books(missing, kind=rule.category_name)} and the cheapest is free."
        )
    kind = rule.category_name or ""
    return f"Add {books(missing, kind=kind, more=True)} and the cheapest is free."
