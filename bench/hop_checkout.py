"""Hop 4: what the outbox adds to a checkout: order_checkout() with its outbox
rows against the same checkout with outbox_record() a no-op, A B A B."""

from __future__ import annotations

import os

from bench.config import Mode
from bench.hop_events import django_env
from bench.pg import database
from bench.procs import Driver
from bench.stats import Comparison, Floor, Sample, Section, Target, interleave, percentile

# Issue 18's target: the outbox's own time in a checkout, p99.
OUTBOX_P99_MS = 1.0


def run(mode: Mode, memory: dict[str, float]) -> Section:
    section = Section("Checkout: the outbox's cost (order_checkout on PostgreSQL)")
    with database(f"bookstore_bench_checkout_{os.getpid()}") as url:
        driver = Driver("checkout-driver", "bench.django_driver", django_env(url, "unused"))
        try:
            driver.run(cmd="setup")

            in_outbox: list[float] = []
            in_insert: list[float] = []

            def checkouts(outbox: bool) -> Sample:
                answer = driver.run(cmd="checkout", n=mode.checkouts, outbox=outbox)
                in_outbox.extend(answer["in_outbox"])
                in_insert.extend(answer["in_insert"])
                return Sample.from_dict(answer)

            checkouts(True)
            in_outbox.clear()
            in_insert.clear()
            pairs = interleave(
                mode.checkout_rounds, lambda: checkouts(False), lambda: checkouts(True)
            )
        finally:
            driver.stop()
    comparison = Comparison.of("checkout", "outbox_record() a no-op", "with the outbox", pairs)
    section.comparisons.append(comparison)
    in_p50, in_p99 = percentile(in_outbox, 50) * 1000, percentile(in_outbox, 99) * 1000
    insert_p50, insert_p99 = percentile(in_insert, 50) * 1000, percentile(in_insert, 99) * 1000
    section.figures.update(
        {
            "time in the outbox per checkout, p50 ms": in_p50,
            "time in the outbox per checkout, p99 ms": in_p99,
            "of which the row's INSERT, p50 ms": insert_p50,
            "of which the row's INSERT, p99 ms": insert_p99,
            "A/B: checkout p50 with - without, ms": (
                comparison.subject_p50_ms - comparison.baseline_p50_ms
            ),
            "A/B: checkout p99 with - without, ms": (
                comparison.subject_p99_ms - comparison.baseline_p99_ms
            ),
        }
    )
    section.targets.append(
        Target(
            "outbox adds to a checkout, p99",
            in_p99,
            OUTBOX_P99_MS,
            False,
            " ms",
            # Building the envelope taken away: the database's own round trip.
            floor=Floor(insert_p99, "the row's INSERT alone (its round trip to PostgreSQL)"),
        )
    )
    section.notes.append(
        f"{mode.checkouts} checkouts of 1-2 books per round, timed around order_checkout() in"
        " one process. The target is judged on the time each checkout spends in"
        " outbox_record() (building the envelope and inserting its row, inside the checkout's"
        " transaction), timed per checkout; the A/B difference of whole checkouts is shown"
        " beside it, but a difference of two p99s mostly measures the noise in the tails."
    )
    return section
