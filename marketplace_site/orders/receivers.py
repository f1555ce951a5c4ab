"""What the orders app does when django.contrib.auth says something happened."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest

from marketplace_site.orders.cart import SESSION_KEY, session_cart
from marketplace_site.orders.services import cart_merge


def cart_joins_the_account(
    sender: Any, request: HttpRequest | None, user: User, **kwargs: Any
) -> None:
    """``user_logged_in``: the session's cart joins the customer's. Every way
    in (the login page, sign-up, the admin's login) sends it, after the
    session has its new key and still holds the cart's id."""
    session = getattr(request, "session", None)
    if session is None:
        return
    cart = session_cart(session)
    session.pop(SESSION_KEY, None)
    if cart is not None:
        cart_merge(user=user, cart=cart)
