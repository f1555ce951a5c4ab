from __future__ import annotations

from django.http import HttpRequest

from marketplace_site.orders.cart import session_cart
from marketplace_site.orders.selectors import cart_count


def cart(request: HttpRequest) -> dict[str, int]:
    """The number of books in the cart, for the header."""
    session = getattr(request, "session", None)
    return {"cart_count": cart_count(cart=session_cart(session)) if session is not None else 0}
