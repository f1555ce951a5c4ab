"""Fault tests: real processes broken for real, then exact counts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection

from marketplace_site.catalog.models import Book
from marketplace_site.orders.services import order_checkout
from marketplace_site.promotions.models import Promotion
from marketplace_site.vouchers.models import VoucherRule
from tests.events.conftest import topology  # noqa: F401  (a fixture, shared)
from tests.processes import Process
from tests.recommender.process import recommender_process  # noqa: F401  (a fixture, shared)

# A checkout of the shop below: 3 books at 10.00, the cheapest free.
TOTAL = Decimal("20.00")


@dataclass
class Shop:
    books: list[Book]
    customers: list[User]
    promotion: Promotion

    def checkout(self, n: int) -> None:
        """Checkout number ``n``: the same basket, customers in turn."""
        order_checkout(
            user=self.customers[n % len(self.customers)],
            items={book.pk: 1 for book in self.books},
            expected_total=TOTAL,
            correlation_id=f"fault-{n}",
        )


@pytest.fixture
def shop(make_book, make_user, make_promotion) -> Shop:
    """Every checkout records two events (a purchase and a promotion applied)
    and reaches every worker consumer; the second purchase of a customer grants
    a voucher."""
    VoucherRule.objects.create(name="Second purchase", nth_purchase=2, percent_off=Decimal("5"))
    return Shop(
        books=[make_book("10.00", stock=100_000) for _ in range(3)],
        customers=[make_user(f"buyer{i}") for i in range(4)],
        promotion=make_promotion(per_customer_limit=10_000),
    )


@dataclass
class Burst:
    """Checkouts one after another on a thread of their own, until stopped."""

    checkout: Callable[[int], None]
    pause: float = 0.02
    limit: int = 1000
    done: int = 0
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Burst:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and self.done < self.limit:
                try:
                    self.checkout(self.done)
                except BaseException as exc:  # reported by stop()
                    self.errors.append(exc)
                    return
                self.done += 1
                time.sleep(self.pause)
        finally:
            connection.close()

    def wait_for(self, checkouts: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.done < checkouts and not self.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.errors, f"a checkout failed: {self.errors[0]!r}"
        assert self.done >= checkouts, f"only {self.done} checkouts in {timeout}s"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> int:
        """Stop; returns how many checkouts succeeded, failing if any did not."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            assert not self._thread.is_alive(), "the checkouts never finished"
        assert not self.errors, f"a checkout failed: {self.errors[0]!r}"
        return self.done


@pytest.fixture
def burst():
    started: list[Burst] = []

    def start(checkout: Callable[[int], None], **options) -> Burst:
        running = Burst(checkout, **options).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running._stop.set()
        if running._thread is not None:
            running._thread.join(30)


@pytest.fixture
def processes():
    """Starts processes; stops every one of them, and prints their logs (shown on failure)."""
    started: list[Process] = []

    def start(process: Process) -> Process:
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    for process in started:
        print(f"--- {process.name} (exit {process.proc.returncode}) ---\n{process.text()[-4000:]}")
