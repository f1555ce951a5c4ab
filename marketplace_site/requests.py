"""The request types the site's views are given, for the type checker."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest


class ShopRequest(HttpRequest):
    """A request after the site's middleware: it carries its correlation id."""

    correlation_id: str


class SignedInRequest(ShopRequest):
    """A request to a view behind login_required: its user is signed in."""

    user: User
