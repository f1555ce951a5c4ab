"""Fills the benchmark site's database: the demo catalog, customers with past
orders, and a signed-in session per customer (printed as JSON).

DJANGO_SETTINGS_MODULE=bench.site_settings DATABASE_URL=... python -m bench.site_setup USERS
"""

from __future__ import annotations

import json
import random
import sys

import django


def main(users: int) -> None:
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from marketplace_site.catalog.models import Book, Category
    from marketplace_site.orders.services import order_checkout

    call_command("migrate", verbosity=0, interactive=False)
    call_command("load_catalog", verbosity=0)
    rng = random.Random(1)
    books = list(Book.objects.filter(active=True).values_list("pk", flat=True))
    Book.objects.update(stock=1_000_000)
    sessions, slugs = [], list(Category.objects.values_list("slug", flat=True))
    for n in range(1, users + 1):
        user = User.objects.create_user(f"reader{n}", f"reader{n}@example.com", "bench-pass")
        for _ in range(2):
            picked = rng.sample(books, rng.randint(1, 3))
            order_checkout(user=user, items={b: 1 for b in picked})
        client = Client()
        client.force_login(user)
        sessions.append(client.cookies["sessionid"].value)
    print(json.dumps({"sessions": sessions, "slugs": slugs, "books": books}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
