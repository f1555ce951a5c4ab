"""Load on the shop, as customers make it: `make loadtest` against a `make run` stack.

- Browsers (most users): the home page, category pages, book pages.
- Buyers: sign up, put three books in stock into the cart, check out at the
  total the cart shows, and see the promotion's discount on the order.
- A promotion surge: SURGE_USERS new customers fill their carts, wait for
  each other, then all check out at the same moment; every one of them must
  get the promotion (once per customer, and each is new).

Any failed request fails the run (locust exits 1). Each run buys books from
the shop's stock; a book page's stock decides which books a buyer picks.

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8000 \\
        -u 20 -r 5 -t 60s --only-summary
"""

from __future__ import annotations

import os
import random
import re
import uuid

from gevent.event import Event
from locust import HttpUser, between, task
from locust.clients import ResponseContextManager

SURGE_USERS = int(os.environ.get("LOCUST_SURGE_USERS", "5"))
# How long surge customers wait for each other before checking out anyway.
SURGE_WAIT = float(os.environ.get("LOCUST_SURGE_WAIT", "30"))
PASSWORD = "load test passphrase 2718"
BOOKS_PER_ORDER = 3

BOOK_ID = re.compile(r'class="book-card" data-book-id="(\d+)"')
CATEGORY = re.compile(r'href="\?category=([a-z0-9-]+)"')
IN_STOCK = re.compile(r'class="stock">(\d+) in stock<')
EXPECTED_TOTAL = re.compile(r'name="expected_total" value="([0-9.]+)"')
ORDER_URL = re.compile(r"/orders/(\d+)/$")
MESSAGE = re.compile(r'class="message[^"]*">([^<]+)<')


class Shopper(HttpUser):
    """What every kind of visitor does: browse, and remember what it saw."""

    abstract = True
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.categories: list[str] = []
        self.seen: list[int] = []
        self.home()

    def _listing(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as response:
            found = [int(i) for i in BOOK_ID.findall(response.text)]
            if response.status_code == 200 and not found:
                response.failure("no books listed")
            self.seen = found or self.seen
            self.categories = CATEGORY.findall(response.text) or self.categories

    @task(3)
    def home(self) -> None:
        self._listing("/", "/")

    @task(3)
    def category(self) -> None:
        if self.categories:
            self._listing(f"/?category={random.choice(self.categories)}", "/?category=[slug]")

    @task(4)
    def book(self) -> None:
        if self.seen:
            self.client.get(f"/books/{random.choice(self.seen)}/", name="/books/[id]/")

    # --- buying ---------------------------------------------------------------

    def csrf(self) -> str:
        return self.client.cookies.get("csrftoken", "")

    def sign_up(self) -> None:
        username = f"load-{uuid.uuid4().hex[:12]}"
        self.client.get("/accounts/signup/", name="/accounts/signup/")
        with self.client.post(
            "/accounts/signup/",
            {
                "username": username,
                "email": f"{username}@example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "csrfmiddlewaretoken": self.csrf(),
            },
            name="/accounts/signup/",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            expect_redirect(response, "/")

    def fill_cart(self) -> None:
        """Three different books that are in stock, one of each."""
        added: set[int] = set()
        for _ in range(20):
            if len(added) == BOOKS_PER_ORDER:
                return
            if not self.seen or set(self.seen) <= added:
                self.category()
                continue
            book_id = random.choice([b for b in self.seen if b not in added])
            page = self.client.get(f"/books/{book_id}/", name="/books/[id]/")
            stock = IN_STOCK.search(page.text)
            if stock is None or int(stock.group(1)) < 2:
                continue  # sold out, or nearly: another buyer may take the last one
            with self.client.post(
                f"/cart/add/{book_id}/",
                {"quantity": "1", "csrfmiddlewaretoken": self.csrf()},
                name="/cart/add/[id]/",
                allow_redirects=False,
                catch_response=True,
            ) as response:
                expect_redirect(response, "/cart/")
            added.add(book_id)
        raise RuntimeError("found no three books in stock")

    def check_out(self, name: str = "/checkout/") -> None:
        cart = self.client.get("/cart/", name="/cart/")
        total = EXPECTED_TOTAL.search(cart.text)
        with self.client.post(
            "/checkout/",
            {
                "expected_total": total.group(1) if total else "",
                "voucher_code": "",
                "csrfmiddlewaretoken": self.csrf(),
            },
            name=name,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            location = response.headers.get("Location", "")
            if response.status_code != 302 or not ORDER_URL.search(location):
                said = MESSAGE.findall(response.text)
                response.failure(f"checkout answered {response.status_code}: {said}")
                return
        with self.client.get(location, name="/orders/[id]/", catch_response=True) as order:
            # A new customer, three books: the promotion must have applied.
            if 'id="order-discount"' not in order.text:
                order.failure("the order did not get the promotion")


class Browser(Shopper):
    weight = 8


class Buyer(Shopper):
    weight = 2

    @task(2)
    def buy(self) -> None:
        self.client.cookies.clear()
        self.sign_up()
        self.fill_cart()
        self.check_out()


_ready = 0
_surge = Event()


class SurgeCustomer(Shopper):
    """Spawned first (fixed_count); checks out once, with all the others, then browses."""

    fixed_count = SURGE_USERS

    def on_start(self) -> None:
        global _ready
        super().on_start()
        self.sign_up()
        self.fill_cart()
        _ready += 1
        if _ready >= SURGE_USERS:
            _surge.set()
        _surge.wait(SURGE_WAIT)
        self.check_out(name="/checkout/ (surge)")


def expect_redirect(response: ResponseContextManager, location: str) -> None:
    if response.status_code != 302 or response.headers.get("Location") != location:
        response.failure(
            f"expected a redirect to {location}, got {response.status_code} "
            f"{response.headers.get('Location')!r}"
        )
