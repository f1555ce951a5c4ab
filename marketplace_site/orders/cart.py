"""Which cart is a visitor's: the session holds its id.

The cart itself is in the database (``Cart``, ``CartLine``), not in the
session: a session is read at the start of a request and written whole at its
end, so two requests at once would each write back what the other did not see.
Only ids and quantities are kept; prices are always read from the catalog, so
nothing a browser sends can change what a book costs.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import SessionBase

from marketplace_site.orders.models import Cart

SESSION_KEY = "cart_id"
MAX_QUANTITY = 20


def session_cart(session: SessionBase) -> Cart | None:
    """The session's cart, or None when it has none yet (nothing is written)."""
    cart_id = session.get(SESSION_KEY)
    found = Cart.objects.filter(pk=cart_id).first() if isinstance(cart_id, int) else None
    if found is None and session.session_key is not None:
        # Another request of this session made it, and wrote the session last.
        found = Cart.objects.filter(session_key=session.session_key).first()
    return found


def session_cart_ensure(session: SessionBase) -> Cart:
    """The session's cart, made if it has none. Parallel requests of one
    session all get the same one: the session's key is unique among carts."""
    cart = session_cart(session)
    if cart is None:
        if session.session_key is None:
            session.save()  # a new session gets its key now
        cart, _ = Cart.objects.get_or_create(session_key=session.session_key)
    if session.get(SESSION_KEY) != cart.pk:
        session[SESSION_KEY] = cart.pk
    return cart
