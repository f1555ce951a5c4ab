"""Adding to running totals in one statement: INSERT ... ON CONFLICT DO UPDATE.

Event handlers keep counters (units sold per book and day, purchases per
customer, redemptions per promotion). Applying a batch of events adds to many
of them at once; one upsert per batch replaces a read, a write and a lock
per event. It runs on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, models


def counters_add(
    model: type[models.Model],
    *,
    key: Sequence[str],
    rows: Mapping[tuple[Any, ...], Mapping[str, Any]],
    add: Sequence[str],
    replace: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Add each row's ``add`` fields to the stored row with the same ``key``
    and overwrite its ``replace`` fields, or create it with the row's values
    when there is none; returns ``key + returning`` of every row written.

    ``rows`` maps a key (values of the ``key`` fields) to the other fields'
    values, one entry per key, each with the same fields; fields neither
    added nor replaced are set only when the row is created. Rows are written
    in key order, so workers adding to the same counters lock them in the
    same order: no deadlock.
    """
    if not rows:
        return []
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    others = list(next(iter(rows.values())))
    fields = [meta.get_field(name) for name in (*key, *others)]
    params: list[Any] = []
    for row_key in sorted(rows):
        row = (*row_key, *(rows[row_key][name] for name in others))
        params += [f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)]

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    updates = [f"{column(n)} = {table}.{column(n)} + EXCLUDED.{column(n)}" for n in add]
    updates += [f"{column(n)} = EXCLUDED.{column(n)}" for n in replace]
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES {', '.join([placeholders] * len(rows))}"
            f" ON CONFLICT ({', '.join(column(n) for n in key)})"
            f" DO UPDATE SET {', '.join(updates)}"
            f" RETURNING {', '.join(column(n) for n in (*key, *returning))}",
            params,
        )
        return cursor.fetchall()
