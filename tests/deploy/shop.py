"""What the deployment tests (compose, swarm) do to a running shop: customers
who sign up and buy, the shop's own checks run inside its containers, the
SMTP server its e-mails reach, and a load of browsing and buying."""

from __future__ import annotations

import json
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol

import pytest

from tests.deploy.compose import REPO_ROOT
from tests.events.broker import wait_until
from tests.shopper import Shopper

ARTIFACTS = REPO_ROOT / "test-artifacts"
CONFIRMATION = re.compile(r"^Subject: Your order #(\d+) is confirmed$", re.MULTILINE)
PASSWORD = "a long and hard to guess passphrase 7"
FANTASY = 3  # BookCategory.FANTASY


class Shop(Protocol):
    """A deployment that runs Python in its services' containers."""

    site: str

    def exec(self, service: str, *command: str) -> str:
        """Runs a command in one of the service's containers; returns its output."""
        ...

    def python(self, service: str, code: str) -> Any:
        """Runs code in one of the service's containers; returns what it prints as JSON."""
        ...


class Mailbox:
    """An SMTP server on this host; the worker sends the shop's e-mails here."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        with self._lock:
            # SMTP ends lines with CRLF.
            self.messages.append(envelope.content.decode("utf-8", "replace").replace("\r\n", "\n"))
        return "250 OK"

    def confirmations(self) -> Counter[int]:
        with self._lock:
            return Counter(int(n) for m in self.messages for n in CONFIRMATION.findall(m))


class BrowserCookies(DefaultCookiePolicy):
    """The site runs production settings (secure cookies) behind no TLS proxy
    here: send its cookies over plain HTTP, as a browser behind one would."""

    def return_ok_secure(self, cookie: Any, request: Any) -> bool:
        return True


def python_command(service: str, code: str) -> list[str]:
    """What runs ``code`` in a service's container: Django's shell where it has Django."""
    if service in {"site", "worker", "relay"}:
        return ["python", "marketplace_site/manage.py", "shell", "-c", code]
    return ["python", "-c", code]


def waited(condition: Callable[[], object], timeout: float, what: str) -> None:
    # Each look runs a docker command: once a second is often enough.
    wait_until(condition, timeout=timeout, what=what, interval=1)


def build_images() -> None:
    """Every image, as `make images` builds them (Docker's cache makes a rebuild quick)."""
    log = ARTIFACTS / "images.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with log.open("w") as out:
        built = subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "images.py")],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    if built.returncode:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        pytest.fail(f"scripts/images.py failed (all of it in {log}):\n{tail}")


# --- a customer ---------------------------------------------------------------


def customer(shop: Shop, name: str) -> Shopper:
    shopper = Shopper(shop.site)
    shopper.cookies.set_policy(BrowserCookies())
    assert shopper.request("/accounts/signup/").status == 200
    username = f"{name}-{secrets.token_hex(3)}"
    signed_up = shopper.request(
        "/accounts/signup/",
        {
            "username": username,
            "email": f"{username}@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert signed_up.status == 302, signed_up.read()[-1500:]
    return shopper


def place_order(shopper: Shopper, book_ids: list[int]) -> int:
    for book_id in book_ids:
        added = shopper.request(f"/cart/add/{book_id}/", {"quantity": "1"})
        assert added.status == 302, added.read()[-1500:]
    cart = shopper.request("/cart/").read().decode()
    total = re.search(r'name="expected_total" value="([^"]+)"', cart)
    assert total, cart[-1500:]
    placed = shopper.request("/checkout/", {"expected_total": total.group(1), "voucher_code": ""})
    assert placed.status == 302, placed.read()[-1500:]
    found = re.search(r"/orders/(\d+)/", placed.headers["Location"])
    assert found is not None, placed.headers["Location"]
    return int(found.group(1))


def books_in(shop: Shop, category: int, count: int) -> list[int]:
    """Books of a category, restocked (as staff would) so that no order runs out."""
    return shop.python(
        "site",
        "import json; from marketplace_site.catalog.models import Book;"
        f"ids = list(Book.objects.filter(category__code={category}, active=True)"
        f".order_by('id').values_list('id', flat=True)[:{count}]);"
        "Book.objects.filter(id__in=ids).update(stock=1000); print(json.dumps(ids))",
    )


def start_promotion(shop: Shop, per_customer_limit: int = 1) -> None:
    """Staff start a campaign in the admin; here, the same row from a shell.
    An order of three books or more gets its cheapest free."""
    shop.python(
        "site",
        "import json; from datetime import timedelta; from django.utils import timezone;"
        "from marketplace_site.promotions.models import Promotion; now = timezone.now();"
        "Promotion.objects.create(name='Buy 2, get a 3rd free', banner='Buy 2, get a 3rd free',"
        " buy_quantity=2, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30),"
        f" per_customer_limit={per_customer_limit}); print(json.dumps('ok'))",
    )


def redemptions(shop: Shop) -> int:
    """The orders the promotion applied to."""
    return shop.python(
        "site",
        "import json; from marketplace_site.promotions.models import Redemption;"
        "print(json.dumps(Redemption.objects.count()))",
    )


# --- load ---------------------------------------------------------------------


@dataclass
class Load:
    """Customers buying (two books an order by default) and one browsing the home page,
    each in a thread, until stopped. Every request is counted; nothing is
    retried: a failed request is a failure."""

    shoppers: list[Shopper]
    books: list[int]
    books_per_order: int = 2
    orders: list[int] = field(default_factory=list)
    # (when, status, where its recommendations came from: data-source)
    pages: list[tuple[float, int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._buy), threading.Thread(target=self._browse)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _buy(self) -> None:
        rng = random.Random(7)
        while not self._stop.is_set():
            try:
                books = rng.sample(self.books, self.books_per_order)
                self.orders.append(place_order(rng.choice(self.shoppers), books))
                self.requests += len(books) + 2  # the adds, the cart, the checkout
            except (AssertionError, OSError) as error:
                self.failures.append(f"{time.strftime('%H:%M:%S')} order: {error!r}")

    def _browse(self) -> None:
        browser = self.shoppers[0]
        while not self._stop.is_set():
            try:
                page = browser.request("/")
                body = page.read().decode()
                source = re.search(r'data-source="([^"]+)"', body)
                status = page.status or 0  # an HTTPError may have none
                self.pages.append((time.monotonic(), status, source.group(1) if source else "-"))
                self.requests += 1
            except OSError as error:
                self.failures.append(f"{time.strftime('%H:%M:%S')} page: {error!r}")
            time.sleep(0.2)

    def longest_without_recommendations(self) -> float:
        """Seconds from the first page without the recommender's answers to the
        next page with them, the longest such stretch."""
        longest, since = 0.0, None
        for at, _, source in self.pages:
            if source != "recommender":
                since = at if since is None else since
            elif since is not None:
                longest, since = max(longest, at - since), None
        if since is not None:
            longest = max(longest, self.pages[-1][0] - since)
        return longest


# --- what the shop's consumers applied -----------------------------------------

# Per consumer: the events the outbox recorded for it and the ones it applied
# (its inbox rows, unique per event): equal means none lost, none twice.
CONSUMERS_APPLIED = (
    "import json;"
    "from events.topology import CONSUMERS, WORKER_CONSUMERS;"
    "from marketplace_site.inbox.models import InboxEvent;"
    "from marketplace_site.outbox.models import OutboxMessage;"
    "rows = list(OutboxMessage.objects.values_list('event_id', 'event_type', 'state'));"
    "print(json.dumps({'unpublished': sum(1 for r in rows if r[2] != 'sent'), 'consumers': {"
    " c: {'recorded': sum(1 for r in rows if r[1] in CONSUMERS[c]),"
    "     'applied': InboxEvent.objects.filter(consumer=c).count()}"
    " for c in WORKER_CONSUMERS}}))"
)


def assert_every_event_applied_once(shop: Shop) -> None:
    applied = shop.python("site", CONSUMERS_APPLIED)
    assert applied["unpublished"] == 0
    for consumer, counts in applied["consumers"].items():
        assert counts["applied"] == counts["recorded"], (consumer, counts)


def assert_no_dead_letters(shop: Shop, node: str) -> None:
    """No message was parked: every dead-letter queue is empty."""
    queues = json.loads(
        shop.exec(
            node, "rabbitmqctl", "-q", "list_queues", "name", "messages", "--formatter", "json"
        )
    )
    parked = {q["name"]: q["messages"] for q in queues if q["name"].endswith(".dead")}
    assert parked == dict.fromkeys(parked, 0)


# The orders (and their lines) a recommender replica's store holds.
STORE_ORDERS = """
import json, sqlite3
db = sqlite3.connect("/app/var/recommender/store.sqlite3")
orders = {orders}
marks = ",".join("?" * len(orders))
rows = db.execute(
    f"SELECT count(DISTINCT order_id), count(*) FROM purchases WHERE order_id IN ({{marks}})",
    orders,
).fetchone()
print(json.dumps({{"orders": rows[0], "lines": rows[1]}}))
"""


def learned(shop: Shop, replica: str, orders: list[int]) -> dict[str, int] | None:
    try:
        return shop.python(replica, STORE_ORDERS.format(orders=sorted(orders)))
    except pytest.fail.Exception:  # not running again yet
        return None
