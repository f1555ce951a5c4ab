"""Which cart is a visitor's: a customer's own, or the session's.

A signed-in customer's cart belongs to the account (``Cart.user``): the same
one after logging out and in again, and on every device. A visitor's cart
belongs to the session, which holds its id, until they log in: then it joins
the account's (``cart_merge``, from the ``user_logged_in`` receiver).

The cart itself is in the database (``Cart``, ``CartLine``), not in the
session: a session is read at the start of a request and written whole at its
end, so two requests at once would each write back what the other did not see.
Only ids and quantities are kept; prices are always read from the catalog, so
nothing a browser sends can change what a book costs.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.base import SessionBase

from marketplace_site.orders.models import Cart

SESSION_KEY = "cart_id"
MAX_QUANTITY = 20


def quantity_allowed(stock: int) -> int:
    """The most copies of a book one cart may hold."""
    return max(0, min(stock, MAX_QUANTITY))


def visitor_cart(*, user: User | AnonymousUser, session: SessionBase | None) -> Cart | None:
    """The visitor's cart, or None when they have none yet (nothing is written)."""
    if user.is_authenticated:
        return Cart.objects.filter(user=user).first()
    return session_cart(session) if session is not None else None


def visitor_cart_ensure(*, user: User | AnonymousUser, session: SessionBase) -> Cart:
    """The visitor's cart, made if they have none. Parallel requests all get
    the same one: a customer and a session key each have one cart at most."""
    if user.is_authenticated:
        return Cart.objects.get_or_create(user=user)[0]
    cart = session_cart(session)
    if cart is None:
        if session.session_key is None:
            session.save()  # a new session gets its key now
        cart, _ = Cart.objects.get_or_create(session_key=session.session_key, user=None)
    if session.get(SESSION_KEY) != cart.pk:
        session[SESSION_KEY] = cart.pk
    return cart


def session_cart(session: SessionBase) -> Cart | None:
    """The session's own cart; never a customer's, whatever id the session holds."""
    anonymous = Cart.objects.filter(user__isnull=True)
    cart_id = session.get(SESSION_KEY)
    found = anonymous.filter(pk=cart_id).first() if isinstance(cart_id, int) else None
    if found is None and session.session_key is not None:
        # Another request of this session made it, and wrote the session last.
        found = anonymous.filter(session_key=session.session_key).first()
    return found
