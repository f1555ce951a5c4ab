"""Reads about accounts: addresses, and the customers events name."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from events.contracts import Event
from marketplace_site.catalog.models import Book
from marketplace_site.lookups import all_by_id


def address_taken(address: str, *, by_other_than: AbstractBaseUser | None = None) -> bool:
    """Whether an account (another than ``by_other_than``) has this e-mail
    address, in any case. Addresses are kept normalized (accounts/addresses.py);
    the database's unique index on lower(email) holds it under races."""
    accounts = get_user_model().objects.filter(email__iexact=address)
    if by_other_than is not None:
        accounts = accounts.exclude(pk=by_other_than.pk)
    return accounts.exists()


class UnknownCustomer(LookupError):
    """A purchase event names a customer this database does not have."""


class UnknownBook(LookupError):
    """A purchase event names a book this database does not have."""


def purchase_customers(events: Sequence[Event]) -> dict[int, AbstractBaseUser]:
    """The customers of these PurchaseCompleted events, by id, once every
    customer and book they name is known. A book or customer with an order
    is never deleted (PROTECT), so one this database lacks means the event
    was not made by this shop: raises UnknownCustomer or UnknownBook naming
    them (the event is retried, then parked)."""
    all_by_id(
        Book.objects.only("pk"),
        (line.book_id for event in events for line in event.payload.lines),
        error=UnknownBook,
        noun="book",
    )
    return event_customers(events)


def event_customers(events: Sequence[Event]) -> dict[int, AbstractBaseUser]:
    """The customers (``payload.user_id``) of these events, by id; raises
    UnknownCustomer naming one this database lacks."""
    return all_by_id(
        get_user_model().objects.all(),
        (event.payload.user_id for event in events),
        error=UnknownCustomer,
        noun="user",
    )
