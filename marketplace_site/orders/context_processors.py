from __future__ import annotations

from django.http import HttpRequest

from marketplace_site.orders.cart import Cart


def cart(request: HttpRequest) -> dict[str, int]:
    """The number of books in the cart, for the header."""
    session = getattr(request, "session", None)
    return {"cart_count": len(Cart(session)) if session is not None else 0}
