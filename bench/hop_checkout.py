"""Hop 4: what the outbox adds to a checkout: order_checkout() with its outbox
rows against the same checkout with outbox_record() a no-op, A B A B."""

from __future__ import annotations

import os

from bench.config import Mode
from bench.hop_events import django_env
from bench.pg import database
from bench.procs import Driver
from bench.stats import Comparison, Sample, Section, Target, interleave


def run(mode: Mode, memory: dict[str, float]) -> Section:
    section = Section("Checkout: the outbox's cost (order_checkout on PostgreSQL)")
    with database(f"bookstore_bench_checkout_{os.getpid()}") as url:
        driver = Driver("checkout-driver", "bench.django_driver", django_env(url, "unused"))
        try:
            driver.run(cmd="setup")

            def checkouts(outbox: bool) -> Sample:
                return Sample.from_dict(driver.run(cmd="checkout", n=mode.checkouts, outbox=outbox))

            checkouts(True)
            pairs = interleave(
                mode.checkout_rounds, lambda: checkouts(False), lambda: checkouts(True)
            )
        finally:
            driver.stop()
    comparison = Comparison.of("checkout", "outbox_record() a no-op", "with the outbox", pairs)
    section.comparisons.append(comparison)
    added_p99 = comparison.subject_p99_ms - comparison.baseline_p99_ms
    added_p50 = comparison.subject_p50_ms - comparison.baseline_p50_ms
    section.figures.update({"outbox adds, p50 ms": added_p50, "outbox adds, p99 ms": added_p99})
    section.targets.append(Target("outbox adds to checkout p99", added_p99, 2.0, False, " ms"))
    section.notes.append(
        f"{mode.checkouts} checkouts of 1-2 books per round, one process, in-transaction"
        " timing of order_checkout(); the difference of the rounds' p99s is what the outbox adds."
    )
    return section
