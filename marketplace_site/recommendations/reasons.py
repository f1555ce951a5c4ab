"""Why a book is recommended, in the words its card shows."""

from __future__ import annotations

from bookstore.recommendations.v1 import recommendations_pb2 as pb

BEST_SELLER = "Best seller"


def why_recommended(*, reason: int, bought_with_title: str = "") -> str:
    """The card's words for the recommender's reason; "" where there is
    nothing to say (the rest of the category, in catalog order)."""
    if reason == pb.BOUGHT_TOGETHER:
        return f"Bought with {bought_with_title}" if bought_with_title else "Often bought together"
    if reason == pb.BEST_SELLER:
        return BEST_SELLER
    return ""
