"""Fetching the rows a batch of events names, all of them or a clear error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def all_by_id(
    queryset: models.QuerySet[M], ids: Iterable[Any], *, error: type[LookupError], noun: str
) -> dict[Any, M]:
    """The rows of ``ids``, by id; raises ``error`` naming every id without one
    ("<noun> 3, 7 does not exist"), so the event is retried, then parked."""
    wanted = set(ids)
    found = queryset.in_bulk(wanted)
    missing = sorted(wanted - found.keys())
    if missing:
        raise error(f"{noun} {', '.join(map(str, missing))} does not exist")
    return found
