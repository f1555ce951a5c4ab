"""The benchmark's pure figures: percentiles, ratios, rounds, CPU accounting (no speed asserted)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest

from bench.cpu import CpuUse, cpu_seconds, fixed, metered, named
from bench.stats import (
    Comparison,
    Report,
    Sample,
    Section,
    Target,
    interleave,
    percentile,
    ratio,
    rotate,
)
from bench.stats import median as median_of


def test_percentiles_interpolate_between_ranks():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile([1.0, 2.0], 50) == pytest.approx(1.5)
    assert percentile(list(map(float, range(101))), 99) == pytest.approx(99.0)
    assert math.isnan(percentile([], 50))


def test_ratios_and_medians_leave_out_what_could_not_be_measured():
    assert ratio(3.0, 4.0) == 0.75
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))
    assert median_of([3.0, math.nan, 1.0, 2.0]) == 2.0
    assert math.isnan(median_of([math.nan]))


def test_interleaving_alternates_and_flips_the_order_each_round():
    calls = []

    def make(name):
        def run():
            calls.append(name)
            return Sample(count=1, seconds=1.0)

        return run

    pairs = interleave(4, make("A"), make("B"))
    assert calls == ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert len(pairs) == 4

    calls.clear()
    samples = rotate(3, {"A": make("A"), "B": make("B"), "C": make("C")})
    assert calls == ["A", "B", "C", "B", "C", "A", "C", "A", "B"]
    assert {k: len(v) for k, v in samples.items()} == {"A": 3, "B": 3, "C": 3}


def test_a_comparison_is_the_median_of_the_rounds_ratios():
    pairs = [
        (Sample(100, 1.0, [0.010] * 100), Sample(80, 1.0, [0.020] * 80)),
        (Sample(200, 1.0, [0.010] * 200), Sample(100, 1.0, [0.010] * 100)),
        (Sample(100, 1.0, [0.010] * 100), Sample(90, 1.0, [0.030] * 90)),
    ]
    c = Comparison.of("x", "bare", "real", pairs)
    assert c.rate_ratio == pytest.approx(0.8)  # ratios 0.8, 0.5, 0.9
    assert c.p99_ratio == pytest.approx(2.0)  # ratios 2, 1, 3
    assert c.subject_rate == 90
    assert c.rounds == 3


def test_targets_and_the_report(tmp_path):
    targets = [Target("rate", 0.9, 0.8, True), Target("p99", 3.0, 2.0, False)]
    section = Section("hop", targets=targets)
    section.figures["unmeasured"] = math.nan
    report = Report(mode="quick", machine={"cpus": 2}, sections=[section])
    assert [t.met for t in section.targets] == [True, False]
    md, js = report.write(tmp_path)
    assert "| hop | rate | MET 0.90x (target >= 0.80x) |" in md.read_text()
    data = json.loads(js.read_text())
    assert data["sections"][0]["figures"]["unmeasured"] is None
    assert [t["met"] for t in data["sections"][0]["targets"]] == [True, False]
    assert "MISSED" in report.table()


def _burn(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_a_metered_round_counts_the_cpu_of_each_group():
    me = os.getpid()
    assert me in named(Path("/proc/self/comm").read_text().strip())()
    assert cpu_seconds(2**22 + 1) is None  # beyond pid_max: no such process

    use = CpuUse()

    def round_() -> Sample:
        _burn(0.3)
        return Sample(count=100, seconds=1.0)

    sample = metered(round_, {"this process": fixed(me), "nobody": fixed()}, use)()
    assert sample.count == 100
    assert use.events == 100
    # The 0.3 s burnt, give or take the 10 ms clock ticks of each reading;
    # nothing for an empty group.
    assert use.seconds["this process"] >= 0.25
    assert use.seconds["nobody"] == 0.0
    assert use.wall >= use.seconds["this process"] - 0.02


def test_cpu_figures_per_event_and_cores_busy():
    use = CpuUse({"workers": 2.0, "broker": 1.0}, wall=2.0, events=1000)
    use.add(CpuUse({"workers": 1.0, "broker": 0.0}, wall=1.0, events=500))
    figures = use.figures("subject", "purchase")
    assert figures["subject: CPU ms per purchase, workers"] == pytest.approx(2.0)
    assert figures["subject: CPU ms per purchase, broker"] == pytest.approx(2 / 3)
    assert figures["subject: CPU ms per purchase, all measured"] == pytest.approx(8 / 3)
    assert figures[f"subject: cores busy (of {os.cpu_count()})"] == pytest.approx(4 / 3)
    assert CpuUse().figures("nothing measured", "call") == {}
