"""Where a round's CPU went: seconds per group of processes, read from /proc.

A ratio says how far a hop is from its baseline; this says why. Around each
round the harness reads the user + system time of every process in named
groups (the workers, the relay, PostgreSQL, RabbitMQ, ...), so the report
can give each group's CPU per event and how many of the machine's cores the
round kept busy, next to the same figures of the baseline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import Sample, Target

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A group's processes, looked up at each reading (PostgreSQL starts a backend
# per connection, so its set changes while the bench runs).
Pids = Callable[[], Iterable[int]]


def cpu_seconds(pid: int) -> float | None:
    """User + system seconds ``pid`` has run, all threads; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: count fields after it.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# How long idle processes are watched: long enough for many of the relay's
# old 50 ms polls, and for its safety poll (1 s) to show.
IDLE_SECONDS = 5.0
# An idle process costs nothing: under 1% of a core.
IDLE_CORE_PERCENT = 1.0


def idle_target(name: str, share: float) -> Target:
    return Target(f"{name} idle", share, IDLE_CORE_PERCENT, False, "% of a core")


def idle_share(pids: Iterable[int], seconds: float = IDLE_SECONDS) -> dict[int, float]:
    """Percent of a core each of ``pids`` used over ``seconds`` of nothing to do."""
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    after = {pid: cpu_seconds(pid) for pid in before}
    return {
        pid: 100 * (now - was) / seconds
        for pid, was in before.items()
        if was is not None and (now := after[pid]) is not None
    }


def named(*commands: str) -> Pids:
    """Every process whose command name (/proc/PID/comm) is one of ``commands``."""

    def pids() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().strip() in commands:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    return pids


def fixed(*pids: int) -> Pids:
    return lambda: pids


def _reading(groups: Mapping[str, Pids]) -> dict[str, dict[int, float]]:
    reading: dict[str, dict[int, float]] = {}
    for name, pids in groups.items():
        seconds = {pid: cpu_seconds(pid) for pid in pids()}
        reading[name] = {pid: s for pid, s in seconds.items() if s is not None}
    return reading


@dataclass
class CpuUse:
    """CPU seconds per group over some rounds, and the wall seconds they took."""

    seconds: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    events: int = 0

    def add(self, other: CpuUse) -> None:
        for name, seconds in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.wall += other.wall
        self.events += other.events

    def figures(self, side: str, per: str) -> dict[str, float]:
        """``side``'s CPU milliseconds per ``per`` for each group, their total,
        and the cores busy on average while its rounds ran."""
        if not self.events or not self.wall:
            return {}
        out = {
            f"{side}: CPU ms per {per}, {name}": 1000 * seconds / self.events
            for name, seconds in self.seconds.items()
        }
        total = sum(self.seconds.values())
        out[f"{side}: CPU ms per {per}, all measured"] = 1000 * total / self.events
        out[f"{side}: cores busy (of {os.cpu_count()})"] = total / self.wall
        return out


def metered(
    run: Callable[[], Sample], groups: Mapping[str, Pids], into: CpuUse
) -> Callable[[], Sample]:
    """``run``, with the CPU its round cost each group added to ``into``.

    A process that started during the round counts from zero; one that ended
    during it is left out (the bench's processes live through every round).
    """

    def measured() -> Sample:
        before = _reading(groups)
        started = time.monotonic()
        sample = run()
        wall = time.monotonic() - started
        after = _reading(groups)
        seconds = {
            name: sum(s - before[name].get(pid, 0.0) for pid, s in after[name].items())
            for name in groups
        }
        into.add(CpuUse(seconds, wall, sample.count))
        return sample

    return measured
