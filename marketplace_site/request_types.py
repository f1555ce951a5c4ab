"""The request types the site's views are given, for the type checker.

Not "requests.py": manage.py runs with this folder first on sys.path, where
that name would stand in for the requests library (the OTLP exporter's)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest


class SignedInRequest(HttpRequest):
    """A request to a view behind login_required: its user is signed in."""

    user: User
