"""Reads about accounts."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User


def address_taken(address: str, *, by_other_than: User | None = None) -> bool:
    """Whether an account (another than ``by_other_than``) has this e-mail
    address, in any case. Addresses are kept normalized (accounts/addresses.py);
    the database's unique index on lower(email) holds it under races."""
    accounts = get_user_model().objects.filter(email__iexact=address)
    if by_other_than is not None:
        accounts = accounts.exclude(pk=by_other_than.pk)
    return accounts.exists()
