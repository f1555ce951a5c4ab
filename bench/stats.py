"""Figures shared by every hop: percentiles, ratios, A B A B rounds, the report.

The machines are shared and noisy, so a figure that matters is a ratio
against a bare baseline run alternately with the subject (A B A B), each
round giving one ratio; the median of those ratios is the result. Absolute
times are reported beside it, never asserted.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(subject: float, baseline: float) -> float:
    """subject / baseline; NaN when the baseline is zero or either is NaN."""
    if not baseline or math.isnan(baseline) or math.isnan(subject):
        return math.nan
    return subject / baseline


def median(values: Iterable[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


@dataclass
class Sample:
    """One timed run: how many operations in how long, and each one's latency (s)."""

    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        return cls(
            count=data["count"],
            seconds=data["seconds"],
            latencies=list(data.get("latencies", ())),
            errors=data.get("errors", 0),
        )


def interleave(
    rounds: int, baseline: Callable[[], Sample], subject: Callable[[], Sample]
) -> list[tuple[Sample, Sample]]:
    """Run baseline and subject alternately, A B A B; the order flips every
    round (A B, B A, ...) so neither always runs on a warmer machine."""
    pairs = []
    for n in range(rounds):
        if n % 2 == 0:
            a = baseline()
            b = subject()
        else:
            b = subject()
            a = baseline()
        pairs.append((a, b))
    return pairs


def rotate(rounds: int, runners: dict[str, Callable[[], Sample]]) -> dict[str, list[Sample]]:
    """Several subjects side by side: each round runs every one, starting one
    further along each time (A B C, B C A, ...)."""
    names = list(runners)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for n in range(rounds):
        for k in range(len(names)):
            name = names[(n + k) % len(names)]
            samples[name].append(runners[name]())
    return samples


@dataclass
class Comparison:
    """Subject against baseline over rounds: medians of per-round figures and ratios."""

    name: str
    baseline: str
    subject: str
    rounds: int
    baseline_rate: float
    subject_rate: float
    rate_ratio: float
    baseline_p50_ms: float
    subject_p50_ms: float
    baseline_p99_ms: float
    subject_p99_ms: float
    p99_ratio: float
    errors: int = 0
    p50_ratio: float = math.nan

    @classmethod
    def of(
        cls, name: str, baseline: str, subject: str, pairs: Sequence[tuple[Sample, Sample]]
    ) -> Comparison:
        return cls(
            name=name,
            baseline=baseline,
            subject=subject,
            rounds=len(pairs),
            baseline_rate=median(a.rate for a, _ in pairs),
            subject_rate=median(b.rate for _, b in pairs),
            rate_ratio=median(ratio(b.rate, a.rate) for a, b in pairs),
            baseline_p50_ms=median(a.p50 * 1000 for a, _ in pairs),
            subject_p50_ms=median(b.p50 * 1000 for _, b in pairs),
            baseline_p99_ms=median(a.p99 * 1000 for a, _ in pairs),
            subject_p99_ms=median(b.p99 * 1000 for _, b in pairs),
            p99_ratio=median(ratio(b.p99, a.p99) for a, b in pairs),
            errors=sum(a.errors + b.errors for a, b in pairs),
            p50_ratio=median(ratio(b.p50, a.p50) for a, b in pairs),
        )


@dataclass
class Floor:
    """The best the same run measured for a target's figure with a part taken
    away that the subject cannot do without (the ranking, grpc.aio, the
    handlers): what a MISSED target is up against, in its own unit."""

    value: float
    what: str


@dataclass
class Target:
    """A goal on one figure: met when ``value`` is on the right side of ``bound``."""

    name: str
    value: float
    bound: float
    at_least: bool
    unit: str = "x"
    floor: Floor | None = None

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{self._shown(self.value)} (target {sign} {self._fmt(self.bound)}{self.unit})"

    def _shown(self, value: float) -> str:
        return "n/a" if math.isnan(value) else f"{self._fmt(value)}{self.unit}"

    def _fmt(self, value: float) -> str:
        # Counts (no unit) as whole numbers.
        if not self.unit and float(value).is_integer():
            return str(int(value))
        return fmt(value)

    def verdict(self) -> str:
        """ "MET 0.90x (target >= 0.85x)"; a figure not measured is MISSED, as "n/a".

        A MISSED target with a floor says it, and whether the floor itself
        misses the bound: then no change to the subject's own part can meet it.
        """
        verdict = ("MET " if self.met else "MISSED ") + self.describe()
        if self.met or self.floor is None:
            return verdict
        floor = self.floor.value
        reach = "within reach" if replace(self, value=floor).met else "out of reach"
        if math.isnan(floor):
            reach = "not measured"
        return f"{verdict}; floor {self._shown(floor)}, {self.floor.what}: {reach}"


def fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Section:
    """One hop's results: comparisons, extra figures, targets, notes."""

    title: str
    comparisons: list[Comparison] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    mode: str
    machine: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
    seconds: float = 0.0

    def summary_rows(self) -> list[tuple[str, str, str]]:
        return [
            (section.title, target.name, target.verdict())
            for section in self.sections
            for target in section.targets
        ]

    def markdown(self) -> str:
        lines = [
            f"# Benchmark report ({self.mode})",
            "",
            "Ratios are subject / baseline, the median over A B A B rounds run side by side;",
            "absolute figures are medians of the rounds and are never asserted.",
            "",
            f"Machine: {', '.join(f'{k} {v}' for k, v in self.machine.items())}; "
            f"took {self.seconds:.0f} s.",
            "",
            "## Summary",
            "",
            "| hop | target | result |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {hop} | {name} | {result} |" for hop, name, result in self.summary_rows()]
        for section in self.sections:
            lines += ["", f"## {section.title}", ""]
            if section.comparisons:
                lines += [
                    "| what | baseline | ratio (rate) | ratio (p99) | subject rate/s |"
                    " baseline rate/s | subject p50 / p99 ms | baseline p50 / p99 ms | rounds |"
                    " errors |",
                    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                ]
                for c in section.comparisons:
                    lines.append(
                        f"| {c.name}: {c.subject} | {c.baseline} | {fmt(c.rate_ratio)}x"
                        f" | {fmt(c.p99_ratio)}x | {fmt(c.subject_rate)} | {fmt(c.baseline_rate)}"
                        f" | {fmt(c.subject_p50_ms)} / {fmt(c.subject_p99_ms)}"
                        f" | {fmt(c.baseline_p50_ms)} / {fmt(c.baseline_p99_ms)} | {c.rounds}"
                        f" | {c.errors} |"
                    )
                lines.append("")
            if section.figures:
                lines += ["| figure | value |", "| --- | --- |"]
                lines += [f"| {k} | {fmt(v)} |" for k, v in section.figures.items()]
                lines.append("")
            lines += [f"- {note}" for note in section.notes]
        return "\n".join(lines).rstrip() + "\n"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for section, raw in zip(self.sections, data["sections"], strict=True):
            for target, raw_target in zip(section.targets, raw["targets"], strict=True):
                raw_target["met"] = target.met
        return _no_nan(data)

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        md, js = directory / "report.md", directory / "report.json"
        md.write_text(self.markdown())
        js.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        return md, js

    def table(self) -> str:
        rows = [("hop", "target", "result"), *self.summary_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
        )


def _no_nan(value: Any) -> Any:
    """JSON has no NaN: None stands for a figure that could not be measured."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
