"""Issue 18's targets in the bench: MET/MISSED, the figures they read, the kill test's counts."""

from __future__ import annotations

import logging
import math

import pytest

from bench.config import FULL, QUICK
from bench.hop_events import PeerLog, handlers_free, kill_counts
from bench.hop_recommender import (
    BARE,
    DEMO,
    MTLS,
    TUTORIAL,
    UNTRACED,
    events_applied,
    recommender_targets,
)
from bench.stats import Comparison, Floor, Sample, Target
from tests.events.test_consuming import Ledger, delivery, event_queue


def test_a_target_says_met_or_missed_and_an_unmeasured_figure_is_missed():
    assert Target("rate", 0.9, 0.85, True).verdict() == "MET 0.90x (target >= 0.85x)"
    assert Target("p99", 1.6, 1.5, False).verdict() == "MISSED 1.60x (target <= 1.50x)"
    assert Target("lost", 0.0, 0, False, unit="").verdict() == "MET 0 (target <= 0)"
    assert Target("rate", math.nan, 0.85, True).verdict() == "MISSED n/a (target >= 0.85x)"


def test_a_comparison_gives_the_median_of_the_rounds_p50_ratios():
    pairs = [
        (Sample(10, 1.0, [0.010] * 10), Sample(10, 1.0, [0.005] * 10)),
        (Sample(10, 1.0, [0.010] * 10), Sample(10, 1.0, [0.020] * 10)),
        (Sample(10, 1.0, [0.010] * 10), Sample(10, 1.0, [0.008] * 10)),
    ]
    assert Comparison.of("x", "a", "b", pairs).p50_ratio == pytest.approx(0.8)


def _comparison(name: str, baseline: str, subject: str, rate: float, p99: float, p50: float):
    base = Sample(100, 1.0, [0.010] * 100)
    other = Sample(round(100 * rate), 1.0, [0.010 * p50] * 98 + [0.010 * p99] * 2)
    return Comparison.of(name, baseline, subject, [(base, other)])


def test_recommender_targets_read_the_right_comparisons():
    comparisons = [
        _comparison("Recommend x16", "echo server", "recommender", 0.1, 9, 9),
        _comparison("Recommend x16", BARE, DEMO, 0.9, 1.4, 1),
        _comparison("Recommend x16", BARE, "recommender", 0.7, 3, 1),
        _comparison("Recommend x16 mTLS", TUTORIAL + MTLS, DEMO + MTLS, 1.1, 2, 1),
        _comparison("Recommend x1 mTLS", TUTORIAL + MTLS, DEMO + MTLS, 1, 1, 0.9),
        _comparison("Recommend x16", UNTRACED, DEMO, 0.96, 1, 1),
        # The floors: ours without the ranking, and bare grpc.aio vs the tutorial.
        _comparison("Recommend x16", BARE, "fixed answer", 0.8, 1.2, 1),
        _comparison("Recommend x16 mTLS", TUTORIAL + MTLS, "fixed answer" + MTLS, 0.9, 1.1, 1),
        _comparison("Recommend x16 mTLS", TUTORIAL + MTLS, BARE + MTLS, 0.95, 1.1, 1),
        _comparison("Recommend x1 mTLS", TUTORIAL + MTLS, "fixed answer" + MTLS, 1, 1, 1.2),
    ]
    targets = {t.name: t for t in recommender_targets(FULL, comparisons)}
    verdicts = {name: t.met for name, t in targets.items()}
    assert verdicts == {
        "x16, demo store: calls/s vs bare": True,
        "x16, demo store: p99 vs bare": True,
        "x16, 100k books / 1M purchases: calls/s vs bare": False,
        "x16 mTLS: calls/s vs tutorial": True,
        "x16 mTLS: p99 vs tutorial": False,
        "x1 mTLS: p50 vs tutorial": True,
        "x16, demo store, tracing off: calls/s vs tracing disabled": False,
    }
    assert targets["x16, demo store: calls/s vs bare"].bound == 0.85
    assert targets["x16, demo store: p99 vs bare"].bound == 1.5
    assert targets["x16, 100k books / 1M purchases: calls/s vs bare"].bound == 0.75
    assert targets["x16, demo store, tracing off: calls/s vs tracing disabled"].bound == 0.97
    # A missed target names its floor, read from the same run.
    large = targets["x16, 100k books / 1M purchases: calls/s vs bare"]
    assert large.floor is not None
    assert large.floor.value == pytest.approx(0.8)
    assert "ranking taken out" in large.verdict()
    assert "out of reach" not in large.verdict()  # 0.8x >= 0.75x: within reach
    assert targets["x16 mTLS: p99 vs tutorial"].verdict().endswith(": out of reach")
    # The quick run names the store it measured.
    quick = [t.name for t in recommender_targets(QUICK, comparisons)]
    assert "x16, 10k books / 0.1M purchases: calls/s vs bare" in quick


def test_the_peer_log_counts_each_orders_consumers_and_duplicates():
    log = PeerLog.of(
        [
            "e1 campaigns 10.0 7",
            "e1 emails 10.5 7",
            "e1 vouchers 10.2 7",
            "e2 campaigns 11.0 8",
            "e2 campaigns 11.4 8",
        ]
    )
    assert log.complete(7, 3)
    assert not log.complete(8, 3)
    assert not log.complete(9, 3)
    assert log.last == {7: 10.5, 8: 11.4}
    assert log.twice() == 1


def test_kill_counts_lose_orders_missing_an_effect_and_double_extra_ledger_lines():
    committed = {1: "a", 2: "b", 3: "c", 4: "d"}
    consumers_done = {1: 3, 2: 2, 3: 3, 4: 3}
    order_lines = {1: 1, 2: 1, 3: 2, 4: 1}
    ledger_lines = {1: 1, 2: 1, 3: 4}  # 4: never in the ledger
    assert kill_counts(committed, consumers_done, order_lines, ledger_lines, 3) == (2, 1)
    assert kill_counts({}, {}, {}, {}, 3) == (0, 0)


def test_a_missed_target_shows_its_floor_and_whether_the_floor_meets_the_bound():
    no_ranking = Floor(0.81, "ours with the ranking taken out vs bare")
    assert Target("rate", 0.70, 0.85, True, floor=no_ranking).verdict() == (
        "MISSED 0.70x (target >= 0.85x); floor 0.81x,"
        " ours with the ranking taken out vs bare: out of reach"
    )
    assert Target("rate", 0.70, 0.75, True, floor=no_ranking).verdict() == (
        "MISSED 0.70x (target >= 0.75x); floor 0.81x,"
        " ours with the ranking taken out vs bare: within reach"
    )
    # A bound from below: the floor is the least the subject could take.
    assert Target("p50", 1.3, 1.0, False, floor=Floor(1.2, "bare vs tutorial")).verdict() == (
        "MISSED 1.30x (target <= 1.00x); floor 1.20x, bare vs tutorial: out of reach"
    )
    # Met, the floor says nothing; unmeasured, it says so.
    assert Target("rate", 0.9, 0.85, True, floor=no_ranking).verdict() == (
        "MET 0.90x (target >= 0.85x)"
    )
    assert Target("rate", 0.7, 0.85, True, floor=Floor(math.nan, "x")).verdict() == (
        "MISSED 0.70x (target >= 0.85x); floor n/a, x: not measured"
    )


def test_the_events_floor_is_the_rate_with_the_handlers_costing_nothing():
    floor = handlers_free(
        {
            "subject: CPU ms per purchase, all measured": 4.62,
            "subject: CPU ms per purchase, workers": 2.52,
            "baseline: CPU ms per purchase, all measured": 0.89,
        }
    )
    assert floor.value == pytest.approx(0.89 / 2.10)
    # What the target leaves the handlers: 0.89 / 0.35 - 2.10 ms.
    assert "the workers' 2.52 ms taken away; the target leaves them 0.44 ms" in floor.what
    assert math.isnan(handlers_free({}).value)


def test_the_learning_figure_counts_each_event_the_consumers_batch_lines_applied(caplog):
    """Read from the recommender's log as the core writes it: a line per
    batch, naming a lone event or counting many."""
    caplog.set_level(logging.INFO, logger="events.consuming")
    queue = event_queue(Ledger())
    for batch in ([delivery(1)], [delivery(n) for n in range(2, 5)]):
        for one, decision in zip(batch, queue.decide(batch), strict=True):
            queue.settled(one, decision)
    log = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) == 2
    assert events_applied(log) == 4
