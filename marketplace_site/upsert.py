"""Many rows in one INSERT ... ON CONFLICT statement, on PostgreSQL and SQLite.

The ORM's bulk_create cannot say which rows it inserted, nor add to a
conflicting row instead of overwriting it; the event handlers need both,
for a whole batch of events at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models


def upsert(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    conflict: Sequence[str],
    add: Sequence[str] = (),
    greatest: Sequence[str] = (),
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (values of ``fields``, in that order). A row whose
    ``conflict`` fields match a stored row adds its ``add`` fields to that
    row's and keeps the greater of its and the stored ``greatest`` fields
    (a batch of older events committed later leaves a newer time alone);
    with neither, it is skipped.
    Returns ``returning`` of every row inserted or updated (raw database
    values), none of a skipped one.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [_field(model, name) for name in fields]

    def column(name: str) -> str:
        return quote(_field(model, name).column)

    params: list[Any] = []
    count = 0
    for row in rows:
        params += [f.get_db_prep_save(v, connection) for f, v in zip(columns, row, strict=True)]
        count += 1
    if not count:
        return []
    updates = [f"{column(n)} = {table}.{column(n)} + EXCLUDED.{column(n)}" for n in add]
    updates += [
        f"{column(n)} = CASE WHEN {table}.{column(n)} IS NULL"
        f" OR EXCLUDED.{column(n)} > {table}.{column(n)}"
        f" THEN EXCLUDED.{column(n)} ELSE {table}.{column(n)} END"
        for n in greatest
    ]
    action = f"UPDATE SET {', '.join(updates)}" if updates else "NOTHING"
    placeholders = f"({', '.join(['%s'] * len(columns))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quote(f.column) for f in columns)})"
            f" VALUES {', '.join([placeholders] * count)}"
            f" ON CONFLICT ({', '.join(column(n) for n in conflict)})"
            f" DO {action}"
            f" RETURNING {', '.join(column(n) for n in returning)}",
            params,
        )
        return cursor.fetchall()


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):  # a reverse relation or a generic key
        raise TypeError(f"{model._meta.label}.{name} is not a column")
    return field
