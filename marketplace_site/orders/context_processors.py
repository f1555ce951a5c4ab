from __future__ import annotations

from django.http import HttpRequest

from marketplace_site.orders.cart import visitor_cart
from marketplace_site.orders.selectors import cart_count


def cart(request: HttpRequest) -> dict[str, int]:
    """The number of books in the cart, for the header."""
    user = getattr(request, "user", None)
    if user is None:  # a page rendered before the middleware ran (a 500)
        return {"cart_count": 0}
    return {"cart_count": cart_count(cart=visitor_cart(user=user, session=request.session))}
