"""Adding to running totals in one statement: INSERT ... ON CONFLICT DO UPDATE.

Event handlers keep counters (units sold per book and day, purchases per
customer, redemptions per promotion). Applying a batch of events adds to many
of them at once; one upsert per batch replaces a read, a write and a lock
per event. It runs on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import models

from marketplace_site.upsert import upsert


def counters_add(
    model: type[models.Model],
    *,
    key: Sequence[str],
    rows: Mapping[tuple[Any, ...], Mapping[str, Any]],
    add: Sequence[str],
    greatest: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Add each row's ``add`` fields to the stored row with the same ``key``
    and keep the greater of its and the stored ``greatest`` fields (a latest
    time), or create it with the row's values when there is none; returns
    ``key + returning`` of every row written.

    ``rows`` maps a key (values of the ``key`` fields) to the other fields'
    values, one entry per key, each with the same fields; fields neither
    added nor kept greatest are set only when the row is created. Rows are written
    in key order, so workers adding to the same counters lock them in the
    same order: no deadlock.
    """
    others = list(next(iter(rows.values()), ()))
    return upsert(
        model,
        fields=(*key, *others),
        rows=((*k, *(rows[k][name] for name in others)) for k in sorted(rows)),
        conflict=key,
        add=add,
        greatest=greatest,
        returning=(*key, *returning),
    )
