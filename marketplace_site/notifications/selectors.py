"""Who gets the digest, and what to ask the recommender for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import OuterRef, QuerySet, Subquery

from marketplace_site.orders.models import OrderLine

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class LatestCategory(TypedDict):
    latest_category: int | None


def digest_recipients() -> QuerySet[WithAnnotations[User, LatestCategory]]:
    """Active customers with an e-mail address, in id order, each annotated
    with ``latest_category``: the category code of their latest purchase
    (None if they bought nothing yet)."""
    latest_category = (
        OrderLine.objects.filter(order__user=OuterRef("pk"))
        .order_by("-order__created_at", "-order_id", "-id")
        .values("book__category__code")[:1]
    )
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .annotate(latest_category=Subquery(latest_category))
        .order_by("pk")
    )
